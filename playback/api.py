"""The thin playback HTTP API (spec/api.md "HTTP API"), shaped like the Spotify Web API.

Stack: aiohttp (already installed as Faust's web server, and used by the CDN), so the API, the
CDN and the workers share one asyncio stack and one set of operational habits; an aiohttp handler
that only reads in-memory dicts answers in well under a millisecond on this machine.

Reads come from the in-memory :class:`playback.replica.Replica` (no network round trip on the
play -> manifest path); every write produces an event (through :class:`playback.publisher.KafkaPublisher`, awaiting
the broker's acknowledgement before answering) and is then recorded as *pending* on the replica
so the caller's next read reflects it (read-your-writes, see replica_state.py). Before producing a
player or playlist event the API folds it locally with the same pure fold the worker runs: an
event the fold would refuse (forbidden edit, nothing to resume, bad position) is answered with
403/400 and never produced.

Policies (documented decisions):

- Auth: ``Authorization: Bearer <token>`` on every ``/v1`` route (``playlog token USER_ID``); 401 for a
  missing, bad or expired token (``WWW-Authenticate: Bearer``), 403 for a forbidden action.
- Users: country and product come from ``view.users``. Routes that need them (play, manifest, home)
  answer 403 "user is not registered" for a user the view does not know; search and track lookups
  work without it (no ``market`` then, unless given).
- Rights: per territory (events carry no per-product rights); the tier decides the manifest rungs
  (free: up to 160 kbps; premium: all). Unknown track, taken down, not licensed -> 403 with the reason.
- ``POST /v1/events``: every valid event of a batch is produced; if any is invalid the answer is 400
  listing each rejected event (index, reason) *and* the number accepted (the valid ones are not lost);
  otherwise 202. A client must not resend the accepted ones (they would be deduplicated by event_id
  downstream anyway).
- Playlists: ``snapshot_id`` given with an edit must be the current one, else 409 (optimistic
  concurrency); playlists are readable by anyone with the id (as on Spotify), editable by the owner
  and, when collaborative, by collaborators.
- Manifests: URLs are signed with ``exp`` on a 60 s grid (``exp = floor(now/60)*60 + TTL``), so every
  request in the same minute gets the same URLs (cacheable by browsers and the CDN) and the API
  caches the serialized manifest per (track, tier, minute); rights are still checked per request.
  Loudness gain: ``-14 - loudness_lufs`` dB, a positive gain capped so the true peak stays <= -1 dBTP.

Where things live (this module only re-exports the entry points, for ``playback.cli``, the benchmarks
and the tests):

- :mod:`playback.app`: ``build_app`` (middleware: auth, body limit, errors, metrics) and ``run``;
- :mod:`playback.service`: :class:`PlaybackApi`, the dependencies and steps every route shares;
- :mod:`playback.routes`: the handlers, one module per resource;
- :mod:`playback.parsing`: request parsing and validation, JSON and error responses;
- :mod:`playback.render`: the Spotify-shaped JSON objects;
- :mod:`playback.manifest`: the pure manifest builder (tiers, signed URLs, loudness gain);
- :mod:`playback.publisher`: producing the API's events (Kafka or memory);
- :mod:`playback.replica_state` / :mod:`playback.replica`: the read models and their Kafka feed;
- :mod:`playback.subsonic`: the OpenSubsonic API under ``/rest`` (its own auth and error model).
"""

from __future__ import annotations

from playback.app import build_app, run
from playback.parsing import ApiError
from playback.publisher import KafkaPublisher, MemoryPublisher, PublishError
from playback.service import PlaybackApi

__all__ = ["ApiError", "KafkaPublisher", "MemoryPublisher", "PlaybackApi", "PublishError", "build_app", "run"]
