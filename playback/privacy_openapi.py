"""OpenAPI fragment of :mod:`playback.routes.privacy`: what ``playback/openapi.py`` lists for
``GET /v1/me/export`` (one entry there, built with its own ``_op``/``_resp`` helpers)."""

from __future__ import annotations

from typing import Any

PATH = "/v1/me/export"
OPERATION_ID = "exportMe"
SUMMARY = ("GDPR export: everything held about the caller (profile, devices, plays, player commands, playlists, "
           "library, taste, credentials ids) as JSON; the names of an erased user are null")
_ARRAY = {"type": "array", "items": {"type": "object"}}
_OBJ_OR_NULL = {"type": "object", "nullable": True}
EXPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["user_id", "profile", "devices", "plays", "player", "playlists", "library", "taste",
                 "credentials", "counts"],
    "properties": {
        "user_id": {"type": "string"}, "profile": _OBJ_OR_NULL, "devices": _ARRAY, "plays": _ARRAY,
        "player": _ARRAY, "playlists": _ARRAY, "library": _OBJ_OR_NULL, "taste": _OBJ_OR_NULL,
        "credentials": _ARRAY, "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
}
