"""Request parsing and validation for the playback API, and its JSON and error responses.

Every helper raises :class:`ApiError` (status, message, extra fields) on bad input; the app's
middleware turns it into the Spotify-style ``{"error": {"status": N, "message": "..."}}`` body.
The bearer token's user id is stored on the request under :data:`USER_KEY` by that middleware.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from aiohttp import web

MAX_BODY = 1 << 20
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
    resp = json_response({"error": {"status": status, "message": message}, **extra}, status)
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


def int_param(request: web.Request, name: str, default: int | None, lo: int, hi: int) -> int:
    """Query parameter ``name`` as an int in ``[lo, hi]``; ``default`` None makes it required."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        if default is None:
            raise ApiError(400, f"Missing required parameter {name}")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid {name}: expected an integer, got {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise ApiError(400, f"Invalid {name}: must be between {lo} and {hi}")
    return value


def valid_id(value: Any, what: str = "id") -> str:
    """A non-empty id of at most 200 characters without whitespace."""
    if not isinstance(value, str) or not 0 < len(value) <= 200 or any(c.isspace() for c in value):
        raise ApiError(400, f"Invalid {what}")
    return value


def parse_uri(uri: Any, kinds: tuple[str, ...] = ("track",)) -> tuple[str, str]:
    """``spotify:<kind>:<id>`` or ``playlog:<kind>:<id>`` -> (kind, id)."""
    if not isinstance(uri, str):
        raise ApiError(400, "Invalid uri: expected a string")
    parts = uri.split(":")
    if len(parts) != 3 or parts[0] not in ("spotify", "playlog") or parts[1] not in kinds or not parts[2]:
        raise ApiError(400, f"Invalid {'/'.join(kinds)} uri: {uri[:80]!r}")
    return parts[1], valid_id(parts[2])


def parse_market(request: web.Request) -> str | None:
    """An explicit ``market`` query parameter (ISO 3166-1 alpha-2), or None if absent / ``from_token``."""
    market = request.query.get("market")
    if market and market != "from_token":
        if len(market) != 2 or not market.isalpha() or not market.isupper():
            raise ApiError(400, "Invalid market code")
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


def non_negative_int(value: Any) -> bool:
    """True for an int >= 0 that is not a bool (JSON ``true`` is not a position)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
