"""Which Spotify scope each ``/v1`` route needs: a rule table (method + path pattern -> scopes).

Pure. :func:`rule_for` returns the first :class:`Rule` whose method and path pattern match; a rule
lists the scopes of which the token needs **one** (``any_of``; empty: none) and whether the route
needs a user (a client-credentials token has none). The table follows the Spotify Web API reference,
including routes this API does not serve yet (a rule for an unserved route is harmless: the route
answers 404 after the check). A ``/v1`` route matched by no rule needs a user and no scope: a new
route is never open to app-only tokens by accident.

Catalog reads (tracks, albums, artists, search, browse, public playlists, public profiles...) need
no scope and no user, as on Spotify.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Every scope Spotify defines (https://developer.spotify.com/documentation/web-api/concepts/scopes)
ALL_SCOPES: tuple[str, ...] = (
    "ugc-image-upload",
    "user-read-playback-state",
    "user-modify-playback-state",
    "user-read-currently-playing",
    "app-remote-control",
    "streaming",
    "playlist-read-private",
    "playlist-read-collaborative",
    "playlist-modify-private",
    "playlist-modify-public",
    "user-follow-modify",
    "user-follow-read",
    "user-read-playback-position",
    "user-top-read",
    "user-read-recently-played",
    "user-library-modify",
    "user-library-read",
    "user-read-email",
    "user-read-private",
    "user-personalized",
    "user-soa-link",
    "user-soa-unlink",
    "user-manage-entitlements",
    "user-manage-partner",
    "user-create-partner",
)

INSUFFICIENT_SCOPE = "Insufficient client scope"
NEEDS_USER = "Valid user authentication required"


@dataclass(frozen=True)
class Rule:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    any_of: tuple[str, ...]
    user: bool
    source: str  # the pattern as written, for messages and tests

    def matches(self, method: str, path: str) -> bool:
        return (method in self.methods or "*" in self.methods) and self.pattern.fullmatch(path) is not None


def _compile(template: str) -> re.Pattern[str]:
    """``/v1/playlists/{id}/tracks`` -> a regex where ``{name}`` is one path segment."""
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))


def _r(methods: str, template: str, *scopes: str, user: bool = True) -> Rule:
    return Rule(frozenset(methods.split()), _compile(template), tuple(scopes), user, f"{methods} {template}")


READ = "GET HEAD"
PLAYLIST_MODIFY = ("playlist-modify-public", "playlist-modify-private")
PLAYLIST_READ = ("playlist-read-private", "playlist-read-collaborative")

RULES: tuple[Rule, ...] = (
    # -- the current user's profile
    _r(READ, "/v1/me", "user-read-private", "user-read-email"),
    # -- player
    _r(READ, "/v1/me/player", "user-read-playback-state"),
    _r(READ, "/v1/me/player/devices", "user-read-playback-state"),
    _r(READ, "/v1/me/player/currently-playing", "user-read-currently-playing", "user-read-playback-state"),
    _r(READ, "/v1/me/player/recently-played", "user-read-recently-played"),
    _r(READ, "/v1/me/player/queue", "user-read-playback-state", "user-read-currently-playing"),
    _r("PUT POST DELETE", "/v1/me/player", "user-modify-playback-state"),
    _r("PUT POST DELETE", "/v1/me/player/{command}", "user-modify-playback-state"),
    # -- playlists
    _r(READ, "/v1/me/playlists", *PLAYLIST_READ),
    _r("POST", "/v1/me/playlists", *PLAYLIST_MODIFY),
    _r(READ, "/v1/users/{user_id}/playlists", *PLAYLIST_READ, user=False),
    _r("POST", "/v1/users/{user_id}/playlists", *PLAYLIST_MODIFY),
    _r(READ, "/v1/playlists/{id}", user=False),
    _r("PUT", "/v1/playlists/{id}", *PLAYLIST_MODIFY),
    _r(READ, "/v1/playlists/{id}/tracks", user=False),
    _r(READ, "/v1/playlists/{id}/items", user=False),
    _r("POST PUT DELETE", "/v1/playlists/{id}/tracks", *PLAYLIST_MODIFY),
    _r("POST PUT DELETE", "/v1/playlists/{id}/items", *PLAYLIST_MODIFY),
    _r(READ, "/v1/playlists/{id}/images", user=False),
    _r("PUT", "/v1/playlists/{id}/images", "ugc-image-upload"),
    _r("PUT DELETE", "/v1/playlists/{id}/followers", *PLAYLIST_MODIFY),
    _r(READ, "/v1/playlists/{id}/followers/contains"),
    # -- library (saved tracks, albums, shows, episodes, audiobooks)
    _r(READ, "/v1/me/tracks", "user-library-read"),
    _r(READ, "/v1/me/tracks/contains", "user-library-read"),
    _r("PUT DELETE", "/v1/me/tracks", "user-library-modify"),
    _r(READ, "/v1/me/albums", "user-library-read"),
    _r(READ, "/v1/me/albums/contains", "user-library-read"),
    _r("PUT DELETE", "/v1/me/albums", "user-library-modify"),
    _r(READ, "/v1/me/shows", "user-library-read"),
    _r(READ, "/v1/me/shows/contains", "user-library-read"),
    _r("PUT DELETE", "/v1/me/shows", "user-library-modify"),
    _r(READ, "/v1/me/episodes", "user-library-read", "user-read-playback-position"),
    _r(READ, "/v1/me/episodes/contains", "user-library-read"),
    _r("PUT DELETE", "/v1/me/episodes", "user-library-modify"),
    _r(READ, "/v1/me/audiobooks", "user-library-read"),
    _r(READ, "/v1/me/audiobooks/contains", "user-library-read"),
    _r("PUT DELETE", "/v1/me/audiobooks", "user-library-modify"),
    # the Feb-2026 library routes also follow artists, users and playlists (playback/routes/social.py)
    _r(READ, "/v1/me/library/contains", "user-library-read", "user-follow-read"),
    _r("PUT DELETE", "/v1/me/library", "user-library-modify", "user-follow-modify", *PLAYLIST_MODIFY),
    # -- follow
    _r(READ, "/v1/me/following", "user-follow-read"),
    _r(READ, "/v1/me/following/contains", "user-follow-read"),
    _r("PUT DELETE", "/v1/me/following", "user-follow-modify"),
    # -- social, this API's own (playback/routes/social.py); the private session is a player command
    _r(READ, "/v1/me/friends/activity", "user-read-playback-state"),
    _r(READ, "/v1/me/blends", *PLAYLIST_READ, "user-follow-read"),
    # -- personalization
    _r(READ, "/v1/me/top/{type}", "user-top-read"),
    # -- this API's own user routes (not Spotify's): a personalized home, playback, client events
    _r(READ, "/v1/views/home", "user-read-private", "user-top-read"),
    _r(READ, "/v1/views/radio", "user-read-private", "user-top-read"),
    _r(READ, "/v1/playback/{track_id}/manifest", "streaming"),
    _r(READ, "/v1/playback/{track_id}/hls/{file}", "streaming"),
    _r("POST", "/v1/events", "streaming", "user-modify-playback-state"),
    # -- catalog reads: no scope, no user
    _r(READ, "/v1/search", user=False),
    _r(READ, "/v1/tracks", user=False),
    _r(READ, "/v1/tracks/{id}", user=False),
    _r(READ, "/v1/albums", user=False),
    _r(READ, "/v1/albums/{id}", user=False),
    _r(READ, "/v1/albums/{id}/tracks", user=False),
    _r(READ, "/v1/artists", user=False),
    _r(READ, "/v1/artists/{id}", user=False),
    _r(READ, "/v1/artists/{id}/albums", user=False),
    _r(READ, "/v1/artists/{id}/top-tracks", user=False),
    _r(READ, "/v1/artists/{id}/related-artists", user=False),
    _r(READ, "/v1/audio-features", user=False),
    _r(READ, "/v1/audio-features/{id}", user=False),
    _r(READ, "/v1/audio-analysis/{id}", user=False),
    _r(READ, "/v1/recommendations", user=False),
    _r(READ, "/v1/recommendations/available-genre-seeds", user=False),
    _r(READ, "/v1/browse/{what}", user=False),
    _r(READ, "/v1/browse/categories/{id}", user=False),
    _r(READ, "/v1/browse/categories/{id}/playlists", user=False),
    _r(READ, "/v1/markets", user=False),
    _r(READ, "/v1/shows", user=False),
    _r(READ, "/v1/shows/{id}", user=False),
    _r(READ, "/v1/shows/{id}/episodes", user=False),
    _r(READ, "/v1/episodes", user=False),
    _r(READ, "/v1/episodes/{id}", user=False),
    _r(READ, "/v1/audiobooks", user=False),
    _r(READ, "/v1/audiobooks/{id}", user=False),
    _r(READ, "/v1/audiobooks/{id}/chapters", user=False),
    _r(READ, "/v1/chapters", user=False),
    _r(READ, "/v1/chapters/{id}", user=False),
    _r(READ, "/v1/users/{user_id}", user=False),
)

DEFAULT_RULE = Rule(frozenset({"*"}), re.compile(r"/v1/.*"), (), True, "* /v1/* (no rule: a user, no scope)")


def rule_for(method: str, path: str) -> Rule:
    """The rule of ``method path`` (HEAD is checked as GET; OPTIONS never reaches here)."""
    method = method.upper()
    for rule in RULES:
        if rule.matches(method, path):
            return rule
    return DEFAULT_RULE


@dataclass(frozen=True)
class Decision:
    """``status`` 0: allowed; else the status (401/403) and the Spotify-style message."""

    status: int
    message: str = ""

    @property
    def allowed(self) -> bool:
        return self.status == 0


def decide(method: str, path: str, scopes: frozenset[str], has_user: bool) -> Decision:
    """May a token with ``scopes`` (and a user, or not) call ``method path``?"""
    rule = rule_for(method, path)
    if rule.user and not has_user:
        return Decision(401, NEEDS_USER)
    if rule.any_of and not scopes.intersection(rule.any_of):
        return Decision(403, INSUFFICIENT_SCOPE)
    return Decision(0)


def parse_scope(raw: str | None) -> tuple[str, ...]:
    """An OAuth ``scope`` parameter (space separated; Spotify also accepts commas) -> scopes, in order,
    without duplicates."""
    words = re.split(r"[\s,]+", raw or "")
    return tuple(dict.fromkeys(w for w in words if w))
