"""The OpenAPI 3 document of the playback API (served at ``/openapi.json``).

The component schemas are generated from the typed models of playback/openapi_models.py; the paths table
below references them. Schemas say what every response carries at least (``required``) and leave room for
more fields (``additionalProperties`` is not closed), as the Spotify Web API's own objects grow over time.

Fragments: the OAuth routes (playback/oauth/openapi_fragment.py), the GDPR export
(playback/privacy_openapi.py) and every module of :data:`FRAGMENTS` that exists (``PATHS``, ``SCHEMAS``)
are merged in. Every /v1 operation documents 401, 403 (insufficient scope), 429 and 503 (with
``Retry-After``).
"""

from __future__ import annotations

import copy
import importlib
from types import ModuleType
from typing import Any

from playback import openapi_models, privacy_openapi
from playback.oauth import openapi_fragment as oauth_openapi

JSON = "application/json"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


STR = {"type": "string"}
INT = {"type": "integer"}

#: the component schemas, generated from the typed models (playback/openapi_models.py)
SCHEMAS: dict[str, Any] = openapi_models.components()

ERRORS = {
    "400": "Bad request (invalid parameter or body)",
    "401": "Missing, bad or expired access token",
    "403": "Forbidden (not playable here, not registered, not allowed to edit)",
    "404": "Not found",
    "409": "Conflict (stale snapshot_id)",
    "413": "Body too large",
    "503": "Could not record the change (broker unavailable)",
}


CATCHING_UP = "Service unavailable: the replicas are catching up with the log (see Retry-After)"


def _resp(description: str, schema: dict | None = None) -> dict:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {JSON: {"schema": schema}}
    return out


def _errors(*codes: str) -> dict:
    return {c: _resp(ERRORS[c], _ref("Error")) for c in codes}


def _q(name: str, schema: dict, required: bool = False, description: str = "") -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def _p(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}


def _body(schema_name: str, required: bool = True) -> dict:
    return {"required": required, "content": {JSON: {"schema": _ref(schema_name)}}}


def _op(op_id: str, summary: str, responses: dict, *, params: list | None = None, body: dict | None = None,
        errors: tuple[str, ...] = ("400", "401", "403", "404")) -> dict:
    op: dict[str, Any] = {"operationId": op_id, "summary": summary, "responses": {**responses, **_errors(*errors)}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    return op


NO_CONTENT = {"204": _resp("Done")}
WRITE_ERRORS = ("400", "401", "403", "404", "409", "413", "503")
IDS = _q("ids", STR, True, "Comma-separated ids")
PAGING = [_q("limit", {"type": "integer", "minimum": 1, "maximum": 50}),
          _q("offset", {"type": "integer", "minimum": 0, "maximum": 2147483647})]
DEVICE = _q("device_id", STR, description="Target device (default: the active one)")


def _playlist_items(suffix: str, remove_schema: str) -> dict:
    """The ``/v1/playlists/{id}/tracks`` (before Feb 2026) or ``/items`` operations (same handlers)."""
    pid = _p("id")
    return {
        "get": _op(f"getPlaylist{suffix}", "A page of the playlist's entries",
                   {"200": _resp("Entries", _ref("Page"))},
                   params=[pid, _q("limit", {"type": "integer", "minimum": 1, "maximum": 100}), PAGING[1]]),
        "post": _op(f"add{suffix}", "Add tracks ({\"uris\": [...]} or a bare array of uris)",
                    {"201": _resp("New snapshot", _ref("Snapshot"))},
                    params=[pid, _q("uris", STR), _q("position", {"type": "integer", "minimum": 0})],
                    body={"required": False, "content": {JSON: {"schema": {"anyOf": [
                        _ref("AddTracks"), {"type": "array", "items": STR, "minItems": 1, "maxItems": 100}]}}}},
                    errors=WRITE_ERRORS),
        "delete": _op(f"remove{suffix}", "Remove every occurrence of tracks",
                      {"200": _resp("New snapshot", _ref("Snapshot"))}, params=[pid],
                      body=_body(remove_schema), errors=WRITE_ERRORS),
        "put": _op(f"reorder{suffix}", "Reorder (range_start/insert_before/range_length) or replace (uris)",
                   {"200": _resp("New snapshot", _ref("Snapshot"))}, params=[pid],
                   body=_body("ReorderTracks"), errors=WRITE_ERRORS),
    }


#: the modules of other route groups that describe their own operations: each exposes ``PATHS`` (path ->
#: {method: operation}) and may expose ``SCHEMAS`` (component name -> schema); one not installed is skipped
FRAGMENTS: list[str] = ["playback.openapi_player_extra", "playback.openapi_social", "playback.openapi_recs"]

RATE_LIMITED = "Too many requests for this token (see Retry-After)"
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying",
                               "schema": {"type": "integer", "minimum": 1}}}
INSUFFICIENT_SCOPE = "insufficient scope (the token lacks a scope the route needs)"


def fragments() -> list[ModuleType]:
    """The :data:`FRAGMENTS` modules that exist."""
    found = []
    for name in FRAGMENTS:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module exists but an import inside it failed: not ours to hide
                raise
    return found


def merge(paths: dict, schemas: dict, more_paths: dict, more_schemas: dict) -> None:
    """Add a fragment's operations (method by method: a fragment may add a method to a path listed here)
    and component schemas; redefining an operation or a different schema of the same name is an error."""
    for path, ops in more_paths.items():
        target = paths.setdefault(path, {})
        for method, op in ops.items():
            if method in target:
                raise ValueError(f"OpenAPI fragment redefines {method.upper()} {path}")
            target[method] = copy.deepcopy(op)  # the /v1 responses are added to it below
    for name, schema in more_schemas.items():
        if name in schemas and schemas[name] != schema:
            raise ValueError(f"OpenAPI fragment redefines the schema {name}")
        schemas[name] = copy.deepcopy(schema)


def _v1_responses(responses: dict) -> None:
    """What every /v1 operation can answer whatever its handler: 401 (token), 403 (scope), 429 (rate
    limit of OAuth clients' tokens, with Retry-After), 503 (replicas catching up, with Retry-After)."""
    responses.setdefault("401", _resp(ERRORS["401"], _ref("Error")))
    forbidden = responses.setdefault("403", _resp("Forbidden", _ref("Error")))
    if INSUFFICIENT_SCOPE not in forbidden["description"]:
        forbidden["description"] += f"; or {INSUFFICIENT_SCOPE}"
    responses.setdefault("429", _resp(RATE_LIMITED, _ref("Error")))
    unavailable = responses.setdefault("503", _resp(CATCHING_UP, _ref("Error")))
    if CATCHING_UP.lower() not in unavailable["description"].lower():  # a write's own 503 (broker unavailable): catching up too
        unavailable["description"] += f"; or {CATCHING_UP[0].lower()}{CATCHING_UP[1:]}"
    for code in ("429", "503"):  # every 429 and 503 carries Retry-After (playback/app.py)
        responses[code].setdefault("headers", RETRY_AFTER)


def spec(server_url: str | None = None) -> dict:
    """The OpenAPI document (``server_url``: the base URL to advertise)."""
    market = _q("market", {"type": "string"}, description="ISO 3166-1 alpha-2 code or from_token")
    paths = {
        "/v1/search": {"get": _op(
            "search", "Search tracks, artists and albums (typo-tolerant, popularity-boosted)",
            {"200": _resp("Results per type", _ref("SearchResult"))},
            params=[_q("q", {"type": "string"}, True), _q("type", STR, description="track,artist,album"), market,
                    _q("limit", {"type": "integer", "minimum": 0, "maximum": 50}),
                    _q("offset", {"type": "integer", "minimum": 0, "maximum": 1000})],
            errors=("400", "401", "403", "503"))},
        "/v1/tracks/{id}": {"get": _op(
            "getTrack", "A track (alias ids resolve to the canonical track, with linked_from)",
            {"200": _resp("The track", _ref("Track"))}, params=[_p("id"), market])},
        "/v1/tracks": {"get": _op(
            "getSeveralTracks", "Tracks by id (null for an unknown id)",
            {"200": _resp("Tracks", _ref("Tracks"))},
            params=[IDS, market])},
        "/v1/tracks/": {"get": _op(
            "getSeveralTracksSlash", "Tracks by id (null for an unknown id)",
            {"200": _resp("Tracks", _ref("Tracks"))},
            params=[IDS, market])},
        "/v1/albums/{id}": {"get": _op(
            "getAlbum", "An album with its first page of tracks", {"200": _resp("The album", _ref("Album"))},
            params=[_p("id"), market])},
        "/v1/albums": {"get": _op(
            "getSeveralAlbums", "Albums by id (null for an unknown id)",
            {"200": _resp("Albums", _ref("Albums"))},
            params=[IDS, market])},
        "/v1/albums/": {"get": _op(
            "getSeveralAlbumsSlash", "Albums by id (null for an unknown id)",
            {"200": _resp("Albums", _ref("Albums"))},
            params=[IDS, market])},
        "/v1/albums/{id}/tracks": {"get": _op(
            "getAlbumTracks", "An album's tracks (paged)", {"200": _resp("Tracks", _ref("TrackPage"))},
            params=[_p("id"), market, *PAGING])},
        "/v1/albums/{id}/tracks/": {"get": _op(
            "getAlbumTracksSlash", "An album's tracks (paged; the path spotipy sends)",
            {"200": _resp("Tracks", _ref("TrackPage"))}, params=[_p("id"), market, *PAGING])},
        "/v1/artists/{id}": {"get": _op(
            "getArtist", "An artist", {"200": _resp("The artist", _ref("Artist"))}, params=[_p("id")])},
        "/v1/artists": {"get": _op(
            "getSeveralArtists", "Artists by id (null for an unknown id)",
            {"200": _resp("Artists", _ref("Artists"))},
            params=[IDS])},
        "/v1/artists/": {"get": _op(
            "getSeveralArtistsSlash", "Artists by id (null for an unknown id)",
            {"200": _resp("Artists", _ref("Artists"))},
            params=[IDS])},
        "/v1/artists/{id}/top-tracks": {"get": _op(
            "getArtistTopTracks", "The artist's 10 most streamed tracks",
            {"200": _resp("Tracks", _ref("TopTracks"))},
            params=[_p("id"), market])},
        "/v1/artists/{id}/albums": {"get": _op(
            "getArtistAlbums", "The artist's albums (paged)", {"200": _resp("Albums", _ref("AlbumPage"))},
            params=[_p("id"), *PAGING])},
        "/v1/me/player/play": {"put": _op(
            "startPlayback", "Start/resume playback (rights checked for the user's country)", NO_CONTENT,
            params=[DEVICE], body=_body("PlayRequest", required=False), errors=WRITE_ERRORS)},
        "/v1/me": {"get": _op("getCurrentUser", "The token user's profile",
                              {"200": _resp("The user", _ref("User"))}, errors=("401", "403"))},
        "/v1/me/": {"get": _op("getCurrentUserSlash", "The token user's profile (the path spotipy sends)",
                               {"200": _resp("The user", _ref("User"))}, errors=("401", "403"))},
        "/v1/me/player/devices": {"get": _op(
            "getDevices", "The user's registered devices (is_active for the player's active one)",
            {"200": _resp("Devices", _ref("Devices"))}, errors=("401",))},
        "/v1/me/player/currently-playing": {"get": _op(
            "getCurrentlyPlaying", "The playing track (204 when nothing is playing)",
            {"200": _resp("Currently playing", _ref("CurrentlyPlaying")), "204": _resp("No playback")},
            errors=("401",))},
        "/v1/me/player": {
            "get": _op("getPlaybackState", "The player state (204 when nothing is playing)",
                       {"200": _resp("Playback state", _ref("PlaybackState")), "204": _resp("No playback")},
                       errors=("401",)),
            "put": _op("transferPlayback", "Transfer playback to another of the user's devices", NO_CONTENT,
                       body=_body("TransferRequest"), errors=WRITE_ERRORS),
        },
        "/v1/me/player/pause": {"put": _op("pausePlayback", "Pause", NO_CONTENT, params=[DEVICE],
                                           errors=WRITE_ERRORS)},
        "/v1/me/player/seek": {"put": _op(
            "seek", "Seek", NO_CONTENT,
            params=[_q("position_ms", {"type": "integer", "minimum": 0}, True), DEVICE], errors=WRITE_ERRORS)},
        "/v1/me/player/next": {"post": _op("skipNext", "Skip to next", NO_CONTENT, params=[DEVICE],
                                           errors=WRITE_ERRORS)},
        "/v1/me/player/previous": {"post": _op("skipPrevious", "Skip to previous", NO_CONTENT, params=[DEVICE],
                                               errors=WRITE_ERRORS)},
        "/v1/me/player/queue": {
            "get": _op("getQueue", "The current track and the upcoming queue",
                       {"200": _resp("Queue", _ref("Queue"))}, errors=("401",)),
            "post": _op("addToQueue", "Add a track to the queue", NO_CONTENT,
                        params=[_q("uri", {"type": "string"}, True), DEVICE], errors=WRITE_ERRORS)},
        "/v1/me/player/volume": {"put": _op(
            "setVolume", "Set the volume of a device", NO_CONTENT,
            params=[_q("volume_percent", {"type": "integer", "minimum": 0, "maximum": 100}, True), DEVICE],
            errors=WRITE_ERRORS)},
        "/v1/playback/{track_id}/manifest": {"get": _op(
            "getManifest", "Stream manifest: rungs for the tier with signed CDN segment URLs",
            {"200": _resp("Manifest", _ref("Manifest"))}, params=[_p("track_id")])},
        "/v1/playback/{track_id}/hls/master.m3u8": {"get": _op(
            "getHlsMaster",
            "HLS master playlist (RFC 8216): the tier's AAC-LC rungs as variants (CODECS mp4a.40.2; Opus "
            "rungs are not HLS packed audio and are left out). Same auth, rights check, tier rule and "
            "403/404 cases as the manifest (404 too when the tier allows no AAC rung). Each variant URI "
            "is the CDN media playlist GET {cdn}/hls/{file_id}/index.m3u8?exp=&kid=[&ter=]&sig=, signed "
            "like a segment URL (same key ring, same 60 s expiry grid, the listener's country in ter), "
            "so players fetch it without an Authorization header; its segments are relative signed "
            "URIs {k}.aac?... on the CDN (ADTS with the packed-audio ID3 timestamp tag). The play grant "
            "is an #EXT-X-SESSION-DATA line with DATA-ID com.playlog.play_id.",
            {"200": {"description": "Master playlist",
                     "content": {"application/vnd.apple.mpegurl": {"schema": {"type": "string"}}}}},
            params=[_p("track_id")])},
        "/v1/events": {"post": _op(
            "postEvents", "A batch of play.* events: validated, produced; 400 lists rejected ones",
            {"202": _resp("All accepted", _ref("EventsAccepted")),
             "400": _resp("Some or all rejected (the valid ones were recorded)",
                          {"anyOf": [_ref("EventsRejected"), _ref("Error")]})},
            body=_body("EventsRequest"), errors=("401", "413", "503"))},
        "/v1/users/{user_id}/playlists": {"post": _op(
            "createPlaylist", "Create a playlist (only for yourself)",
            {"201": _resp("Created", _ref("Playlist"))}, params=[_p("user_id")], body=_body("CreatePlaylist"),
            errors=WRITE_ERRORS)},
        "/v1/playlists/{id}": {"get": _op(
            "getPlaylist", "A playlist", {"200": _resp("Playlist", _ref("Playlist"))}, params=[_p("id")])},
        "/v1/playlists/{id}/tracks": _playlist_items("Tracks", "RemoveTracks"),
        "/v1/playlists/{id}/items": _playlist_items("Items", "RemoveItems"),
        "/v1/me/playlists": {
            "get": _op("getMyPlaylists", "The token user's playlists (paged)",
                       {"200": _resp("Playlists", _ref("Page"))}, params=PAGING, errors=("400", "401")),
            "post": _op("createMyPlaylist", "Create a playlist for the token user",
                        {"201": _resp("Created", _ref("Playlist"))}, body=_body("CreatePlaylist"),
                        errors=WRITE_ERRORS)},
        privacy_openapi.PATH: {"get": _op(privacy_openapi.OPERATION_ID, privacy_openapi.SUMMARY,
                                          {"200": _resp("The export", privacy_openapi.EXPORT_SCHEMA)},
                                          errors=("401",))},
    }
    schemas = dict(SCHEMAS)
    merge(paths, schemas, oauth_openapi.PATHS, oauth_openapi.SCHEMAS)
    for fragment in fragments():
        merge(paths, schemas, fragment.PATHS, getattr(fragment, "SCHEMAS", {}))
    for path, ops in paths.items():
        if path.startswith("/v1/"):
            for op in ops.values():
                _v1_responses(op["responses"])
    return {
        "openapi": "3.0.3",
        "info": {"title": "playlog playback API", "version": "1",
                 "description": "The thin playback API: Spotify-Web-API-shaped reads from local replicas; "
                                "every write is an event."},
        "servers": [{"url": server_url or "http://127.0.0.1:8700"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
