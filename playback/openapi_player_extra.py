"""OpenAPI fragment: the player's shuffle and repeat commands, recently played and top items
(:mod:`playback.routes.player`, :mod:`playback.routes.personal`).

:data:`PATHS` (path -> {method: operation}) is merged into ``playback/openapi.py``'s paths; the
operations reference the main document's component schemas (``Error``, ``Track``, ``Artist``,
``Page``) and build nothing else from it, so this module imports nothing of ``playback.openapi``.
"""

from __future__ import annotations

from typing import Any

JSON = "application/json"
_ERROR = {"$ref": "#/components/schemas/Error"}
_DESCRIPTIONS = {
    "400": "Bad request (invalid parameter)",
    "401": "Missing, bad or expired access token",
    "403": "Forbidden (insufficient scope, user not registered, command refused by the player)",
    "404": "Device not found, or no active device (reason NO_ACTIVE_DEVICE)",
    "503": "Could not record the change (broker unavailable) or the replicas are catching up",
}
STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}


def _errors(*codes: str) -> dict[str, Any]:
    return {c: {"description": _DESCRIPTIONS[c], "content": {JSON: {"schema": _ERROR}}} for c in codes}


def _q(name: str, schema: dict[str, Any], required: bool = False, description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"200": {"description": description, "content": {JSON: {"schema": schema}}}}


_DEVICE = _q("device_id", STR, description="Target device, one the user registered (default: the active one)")
_COMMAND_ERRORS = _errors("400", "401", "403", "404", "503")
_READ_ERRORS = _errors("400", "401", "403", "503")
_LIMIT = _q("limit", {"type": "integer", "minimum": 1, "maximum": 50})
_MS = {"type": "integer", "minimum": 0, "maximum": 2**53}

RECENTLY_PLAYED: dict[str, Any] = {
    "type": "object",
    "required": ["href", "items", "limit", "next", "cursors"],
    "properties": {
        "href": STR, "limit": INT, "total": INT, "next": {"type": "string", "nullable": True},
        "cursors": {"type": "object", "description": "after/before: absent on an empty page",
                    "properties": {"after": STR, "before": STR}},
        "items": {"type": "array", "items": {
            "type": "object", "required": ["track", "played_at", "context"],
            "properties": {"track": {"$ref": "#/components/schemas/Track"},
                           "played_at": {"type": "string", "format": "date-time"},
                           "context": {"type": "object", "nullable": True}}}},
    },
}

TOP_PAGE: dict[str, Any] = {"allOf": [{"$ref": "#/components/schemas/Page"}, {
    "type": "object", "required": ["items"],
    "properties": {"items": {"type": "array", "items": {"anyOf": [
        {"$ref": "#/components/schemas/Track"}, {"$ref": "#/components/schemas/Artist"}]}}}}]}

PATHS: dict[str, dict[str, Any]] = {
    "/v1/me/player/shuffle": {"put": {
        "operationId": "toggleShuffle",
        "summary": "Shuffle on or off (a player.shuffle_set event; the order is seeded by its event id)",
        "parameters": [_q("state", {"type": "string", "enum": ["true", "false"]}, True), _DEVICE],
        "responses": {"204": {"description": "Done"}, **_COMMAND_ERRORS},
    }},
    "/v1/me/player/repeat": {"put": {
        "operationId": "setRepeatMode",
        "summary": "Repeat track, context or off (a player.repeat_set event)",
        "parameters": [_q("state", {"type": "string", "enum": ["track", "context", "off"]}, True), _DEVICE],
        "responses": {"204": {"description": "Done"}, **_COMMAND_ERRORS},
    }},
    "/v1/me/player/recently-played": {"get": {
        "operationId": "getRecentlyPlayed",
        "summary": "The user's recent plays (one per playback that counted), newest first, cursor paged",
        "parameters": [_LIMIT, _q("after", _MS, description="unix ms, exclusive (not with before)"),
                       _q("before", _MS, description="unix ms, exclusive (not with after)")],
        "responses": {**_ok("Recently played", RECENTLY_PLAYED), **_READ_ERRORS},
    }},
    **{f"/v1/me/top/{kind}": {"get": {  # one path per type, as Spotify documents them
        "operationId": f"getUsersTop{kind.capitalize()}",
        "summary": what,
        "parameters": [
            _q("time_range", {"type": "string", "enum": ["short_term", "medium_term", "long_term"]},
               description="4 weeks, 6 months, 1 year (default medium_term)"),
            _LIMIT, _q("offset", {"type": "integer", "minimum": 0, "maximum": 2147483647})],
        "responses": {**_ok("Top items", TOP_PAGE), **_READ_ERRORS},
    }} for kind, what in (("tracks", "Top tracks (plays in the window, from history)"),
                          ("artists", "Top artists (decayed taste affinity)"))},
}
