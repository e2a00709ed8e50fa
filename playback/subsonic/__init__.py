"""The OpenSubsonic API of the playback API, under ``/rest/*`` (JSON, JSONP and XML; the Subsonic error model).

Standard Subsonic clients (DSub, Symfonium, Feishin, py-opensonic...) browse the catalog, stream,
scrobble, star and keep playlists and a play queue through it, on the same views and events as ``/v1``:

- :mod:`~playback.subsonic.routes`: the dispatcher mounted by ``playback.app.build_app``;
- :mod:`~playback.subsonic.params`, :mod:`~playback.subsonic.render`: parameters as real clients send
  them, the response envelope and error codes (pure);
- :mod:`~playback.subsonic.auth`, :mod:`~playback.subsonic.secrets`: ``apiKey``, token + salt and
  password auth against app passwords kept encrypted (``playlog subsonic password USER_ID``,
  :mod:`~playback.subsonic.cli`);
- :mod:`~playback.subsonic.objects`, :mod:`~playback.subsonic.media`: Subsonic objects from the
  replica, the rendition a stream sends (pure);
- the methods, one module per area: :mod:`~playback.subsonic.system`, :mod:`~playback.subsonic.browse`,
  :mod:`~playback.subsonic.library`, :mod:`~playback.subsonic.playlists`,
  :mod:`~playback.subsonic.stream`, :mod:`~playback.subsonic.plays`.
"""
