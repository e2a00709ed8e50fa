"""OpenAPI fragment of :mod:`playback.routes.social`: :data:`PATHS` (path -> {method: operation}),
merged into ``playback/openapi.py``'s paths (which adds the 503 every ``/v1`` route may answer)."""

from __future__ import annotations

from typing import Any

JSON = "application/json"
STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
BOOL: dict[str, Any] = {"type": "boolean"}
_ERRORS = {
    "400": "Bad request (invalid type, ids or body)",
    "401": "Missing, bad or expired access token",
    "403": "Forbidden (scope, or a Blend that cannot be edited or followed)",
    "404": "Not found (unknown artist, user or playlist; a Blend whose users do not follow each other)",
    "413": "Body too large",
    "503": "Could not record the change (broker unavailable)",
}
READ_ERRORS = ("400", "401", "403", "404")
WRITE_ERRORS = ("400", "401", "403", "404", "413", "503")


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict:
    out: dict[str, Any] = {"type": "object", "properties": {**required, **(optional or {})}}
    if required:  # OpenAPI 3.0: a "required" list is never empty
        out["required"] = list(required)
    return out


def _nullable(schema: dict) -> dict:
    return {"allOf": [schema], "nullable": True} if "$ref" in schema else {**schema, "nullable": True}


def _resp(description: str, schema: dict | None = None) -> dict:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {JSON: {"schema": schema}}
    return out


def _q(name: str, schema: dict, required: bool = False, description: str = "") -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def _op(op_id: str, summary: str, responses: dict, *, params: list | None = None, body: dict | None = None,
        errors: tuple[str, ...] = READ_ERRORS) -> dict:
    op: dict[str, Any] = {"operationId": op_id, "summary": summary,
                          "responses": {**responses, **{c: _resp(_ERRORS[c], _ref("Error")) for c in errors}}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    return op


PID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
FOLLOW_TYPE = _q("type", {"type": "string", "enum": ["artist", "user"]}, True, "artist or user")
IDS = _q("ids", STR, False, "Comma-separated ids (public or internal), at most 50")
IDS_BODY = {"required": False, "content": {JSON: {"schema": _obj(
    {"ids": {"type": "array", "items": STR, "minItems": 1, "maxItems": 50}})}}}
BOOLS = {"type": "array", "items": BOOL}
URIS = _q("uris", STR, True, "Comma-separated spotify:<track|album|artist|user|playlist>:<id> uris, at most 40")
USER_REF = _obj({"id": STR, "type": STR, "uri": STR}, {"href": STR, "display_name": _nullable(STR)})
FEED = _obj({"friends": {"type": "array", "items": _obj({
    "user": USER_REF, "latest_played_at": _nullable(STR),
    "plays": {"type": "array", "items": _obj({"track": _ref("Track"), "played_at": STR,
                                              "context": _nullable(_obj({"uri": STR}))})},
})}})
FOLLOWED_ARTISTS = _obj({"artists": _obj({
    "href": STR, "items": {"type": "array", "items": _ref("Artist")}, "limit": INT, "next": _nullable(STR),
    "total": INT, "cursors": _obj({}, {"after": STR, "before": STR}),  # after: absent on the last page
})})

PATHS: dict[str, dict[str, Any]] = {
    "/v1/me/following": {
        "get": _op("getFollowedArtists", "The artists the caller follows: a cursor page in artist-id order "
                   "(after: the last id of the previous page)",
                   {"200": _resp("Followed artists", FOLLOWED_ARTISTS)},
                   params=[_q("type", {"type": "string", "enum": ["artist"]}, True), _q("after", STR),
                           _q("limit", {"type": "integer", "minimum": 1, "maximum": 50})]),
        "put": _op("followArtistsUsers", "Follow artists or users (ids in the query or the body); "
                   "a library.followed event each", {"204": _resp("Followed")},
                   params=[FOLLOW_TYPE, IDS], body=IDS_BODY, errors=WRITE_ERRORS),
        "delete": _op("unfollowArtistsUsers", "Unfollow artists or users (ids in the query or the body); "
                      "a library.unfollowed event each", {"204": _resp("Unfollowed")},
                      params=[FOLLOW_TYPE, IDS], body=IDS_BODY, errors=WRITE_ERRORS),
    },
    "/v1/me/following/contains": {"get": _op(
        "checkCurrentUserFollows", "Does the caller follow each artist / user?",
        {"200": _resp("One boolean per id", BOOLS)},
        params=[FOLLOW_TYPE, _q("ids", STR, True, "Comma-separated ids, at most 50")])},
    "/v1/playlists/{id}/followers": {
        "put": _op("followPlaylist", "Follow a playlist (body {\"public\": bool}, default true)",
                   {"200": _resp("Followed")}, params=[PID],
                   body={"required": False, "content": {JSON: {"schema": _obj({}, {"public": BOOL})}}},
                   errors=WRITE_ERRORS),
        "delete": _op("unfollowPlaylist", "Unfollow a playlist", {"200": _resp("Unfollowed")}, params=[PID],
                      errors=WRITE_ERRORS),
    },
    "/v1/playlists/{id}/followers/contains": {"get": _op(
        "checkIfUserFollowsPlaylist", "Does each user follow the playlist (a non-public follow shows only to "
        "the follower; default: the caller)", {"200": _resp("One boolean per id", BOOLS)},
        params=[PID, _q("ids", STR, False, "Comma-separated user ids, at most 5")])},
    "/v1/me/player/private-session": {"put": _op(
        "setPrivateSession", "Start (true) or end (false) a private session: plays while it is on never show "
        "in friends' activity", {"204": _resp("Done")},
        params=[_q("state", {"type": "string", "enum": ["true", "false"]}, True)], errors=WRITE_ERRORS)},
    "/v1/me/friends/activity": {"get": _op(
        "getFriendsActivity", "The latest plays of each user the caller follows, newest first (private-session "
        "plays and erased users left out)", {"200": _resp("Friends' activity", FEED)},
        params=[_q("limit", {"type": "integer", "minimum": 1, "maximum": 50}, False, "Plays per friend")])},
    "/v1/me/library": {
        "put": _op("saveLibraryItems", "Save items (Spotify's Feb-2026 route): artist, user and playlist uris are "
                   "followed, track and album uris starred", {"200": _resp("Saved")}, params=[URIS],
                   errors=WRITE_ERRORS),
        "delete": _op("removeLibraryItems", "Remove items: unfollow artists, users, playlists; unstar tracks, "
                      "albums", {"200": _resp("Removed")}, params=[URIS], errors=WRITE_ERRORS),
    },
    "/v1/me/library/contains": {"get": _op(
        "checkLibraryContains", "Is each item saved (followed, or starred)?",
        {"200": _resp("One boolean per uri", BOOLS)}, params=[URIS])},
    "/v1/me/blends": {"get": _op(
        "getMyBlends", "The caller's Blends (one per mutual follow): simplified playlists, paged",
        {"200": _resp("Blends", _ref("Page"))},
        params=[_q("limit", {"type": "integer", "minimum": 1, "maximum": 50}),
                _q("offset", {"type": "integer", "minimum": 0, "maximum": 2147483647})])},
}
