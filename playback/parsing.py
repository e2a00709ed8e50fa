"""Request parsing and validation for the playback API, and its JSON and error responses.

Every helper raises :class:`ApiError` (status, message, extra fields) on bad input; the app's
middleware turns it into the Spotify-style ``{"error": {"status": N, "message": "..."}}`` body.
The bearer token's user id is stored on the request under :data:`USER_KEY` by that middleware.

Values in range: an integer input (query parameter or JSON field) that becomes an event field is
checked to the field's Avro range (``int``: 0 .. :data:`INT_MAX` for positions, offsets and
lengths), ids to :data:`MAX_ID_CHARS` and free text to :data:`MAX_TEXT_CHARS` (the codec's bounds,
schemas/codec.py), so the API answers 400 naming the field rather than producing an event the
codec, a sink or a reader would refuse.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import orjson
from aiohttp import web

from playback.ids import internal_id
from schemas.codec import INT_MAX, MAX_ARRAY_ITEMS, MAX_ID_CHARS, MAX_TEXT_CHARS  # noqa: F401 - the routes' bounds

MAX_BODY = 1 << 20
REQUIRED: Any = object()  # int_field's default for a required field
_INTEGER = re.compile(r"[+-]?[0-9]+")
USER_KEY = web.RequestKey("user_id", str)
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class ApiError(Exception):
    """An error answered to the client: ``status``, ``message`` and extra top-level body fields."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def error_response(status: int, message: str, **extra: Any) -> web.Response:
    """Spotify's error object: ``{"error": {"status", "message"[, "reason"]}}``; a ``reason`` (e.g. the
    player's ``NO_ACTIVE_DEVICE``) sits inside ``error`` as in Spotify's ``PlayerError``, other extra
    fields at the top level."""
    error: dict[str, Any] = {"status": status, "message": message}
    if "reason" in extra:
        error["reason"] = extra.pop("reason")
    resp = json_response({"error": error, **extra}, status)
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="playlog"'
    return resp


def new_id(n: int = 22) -> str:
    """A random base62 id (Spotify-like, 22 characters by default)."""
    return "".join(secrets.choice(_BASE62) for _ in range(n))


def base_url(request: web.Request) -> str:
    """``scheme://host`` the client used (for ``href`` fields)."""
    return f"{request.scheme}://{request.host}"


def user_id(request: web.Request) -> str:
    """The access token's user (set by the auth middleware on every ``/v1`` route)."""
    return request[USER_KEY]


def _out_of_range(name: str, lo: int, hi: int) -> ApiError:
    return ApiError(400, f"Invalid {name}: must be an integer between {lo} and {hi}")


def int_param(request: web.Request, name: str, default: int | None, lo: int, hi: int) -> int:
    """Query parameter ``name`` as an int in ``[lo, hi]``; ``default`` None makes it required.
    Only plain decimal digits (with a sign) are an integer: not ``1e3``, ``1_000`` or ``0x10``."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        if default is None:
            raise ApiError(400, f"Missing required parameter {name}")
        return default
    if not _INTEGER.fullmatch(raw):
        raise ApiError(400, f"Invalid {name}: expected an integer, got {raw[:40]!r}")
    if len(raw) > 20:  # beyond any 64-bit value: out of range whatever the bounds (and cheap to refuse)
        raise _out_of_range(name, lo, hi)
    value = int(raw)
    if not lo <= value <= hi:
        raise _out_of_range(name, lo, hi)
    return value


def int_field(body: dict, name: str, default: Any = REQUIRED, lo: int = 0, hi: int = INT_MAX, *,
              nullable: bool = False, label: str | None = None) -> Any:
    """JSON field ``name`` of ``body`` as an int in ``[lo, hi]`` (a JSON integer: not a bool, not
    ``1.0``): ``default`` when absent (:data:`REQUIRED`: 400 when absent), None when null and
    ``nullable``. ``label`` names the field in the message (default: ``name``)."""
    label = label or name
    if name not in body:
        if default is REQUIRED:
            raise ApiError(400, f"Missing required field {label}")
        return default
    value = body[name]
    if value is None and nullable:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise _out_of_range(label, lo, hi)
    return value


def text_param(request: web.Request, name: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """Query parameter ``name`` (stripped; empty when absent) of at most ``max_chars`` characters."""
    value = request.query.get(name, "").strip()
    if len(value) > max_chars:
        raise ApiError(400, f"Invalid {name}: at most {max_chars} characters")
    return value


def valid_id(value: Any, what: str = "id") -> str:
    """A non-empty id of at most :data:`MAX_ID_CHARS` characters without whitespace."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_CHARS or any(c.isspace() for c in value):
        raise ApiError(400, f"Invalid {what}: expected 1 to {MAX_ID_CHARS} characters without spaces")
    return value


def parse_uri(uri: Any, kinds: tuple[str, ...] = ("track",)) -> tuple[str, str]:
    """``spotify:<kind>:<id>`` or ``playlog:<kind>:<id>`` -> (kind, internal id); a public alias
    (playback/ids.py) is decoded."""
    if not isinstance(uri, str):
        raise ApiError(400, "Invalid uri: expected a string")
    parts = uri.split(":")
    if len(parts) != 3 or parts[0] not in ("spotify", "playlog") or parts[1] not in kinds or not parts[2]:
        raise ApiError(400, f"Invalid {'/'.join(kinds)} uri: {uri[:80]!r}")
    return parts[1], valid_id(internal_id(parts[2]))


def path_id(request: web.Request, name: str = "id", what: str = "id") -> str:
    """Path parameter ``name`` as an internal id: a public alias (playback/ids.py) is decoded."""
    return valid_id(internal_id(request.match_info[name]), what)


def parse_market(request: web.Request) -> str | None:
    """An explicit ``market`` query parameter (ISO 3166-1 alpha-2), or its older alias ``country``
    (Spotify's name before ``market``; ``market`` wins when both are given); None if absent or
    ``from_token`` (the caller then takes the token user's country)."""
    name = "market" if request.query.get("market") else "country"
    market = request.query.get(name)
    if market and market != "from_token":
        if len(market) != 2 or not market.isalpha() or not market.isupper():
            raise ApiError(400, f"Invalid {name}: expected an ISO 3166-1 alpha-2 code or from_token, "
                                f"got {market[:20]!r}")
        return market
    return None


async def json_body(request: web.Request, *, required: bool = True) -> Any:
    """The parsed JSON body (None when empty and not ``required``)."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise ApiError(400, "Missing request body")
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "Error parsing JSON.") from None


async def json_object(request: web.Request, *, required: bool = True) -> dict:
    """The JSON body as an object (``{}`` when empty and not ``required``)."""
    body = await json_body(request, required=required)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object")
    return body


def bool_field(body: dict, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise ApiError(400, f"Invalid {name}: expected a boolean")
    return value


def non_negative_int(value: Any, hi: int = INT_MAX) -> bool:
    """True for an int in ``0 .. hi`` (an Avro ``int`` by default) that is not a bool (JSON ``true``
    is not a position)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= hi
