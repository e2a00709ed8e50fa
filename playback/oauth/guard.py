"""What the API middleware checks on every request beyond the routes (playback/app.py):

- the bearer token of a ``/v1`` route, verified against the token key ring (PLAYLOG_TOKEN_KEYS, see
  playback/auth.py) with a cache of verified tokens;
- the per-token rate limit (PLAYLOG_API_RATE_LIMIT requests/s, bursts of PLAYLOG_API_RATE_BURST):
  429 ``{"error": {"status": 429, "message": "API rate limit exceeded"}}`` with ``Retry-After``. It
  applies to tokens issued to an OAuth client (``/api/token``: they carry ``client_id``), as Spotify
  limits apps; a local ``playlog token`` (operators, tests, benchmarks: no client) is not limited;
- the route's scope (playback/oauth/scopes.py);
- CORS (PLAYLOG_CORS_ORIGINS): preflight ``OPTIONS`` answered 204, ``Access-Control-Allow-Origin``
  on every answer to an allowed origin.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from playback import auth
from playback.oauth.ratelimit import RateLimiter, retry_after_seconds

RATE_LIMITED = "API rate limit exceeded"
CORS_METHODS = "GET, HEAD, POST, PUT, DELETE, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type, Accept, Accept-Language, Range"
CORS_EXPOSE = "Retry-After, Content-Length, Content-Range, Location, WWW-Authenticate"
CORS_MAX_AGE = "600"


class Guard:
    def __init__(self, settings: Any, clock: Callable[[], float], *,
                 monotonic: Callable[[], float] = time.monotonic):
        self.settings, self.clock = settings, clock
        self.ring = auth.key_ring(settings)
        rate = getattr(settings, "api_rate_limit", 50)
        self.limiter = RateLimiter(rate, getattr(settings, "api_rate_burst", 50), monotonic) if rate else None
        origins = tuple(getattr(settings, "cors_origins", ("*",)))
        self.any_origin = "*" in origins
        self.origins = frozenset(origins)
        self._tokens: dict[str, auth.TokenCheck] = {}

    # -- bearer tokens -----------------------------------------------------------------------------
    def authorize(self, header: str | None) -> auth.TokenCheck:
        """``auth.check_authorization`` against the key ring, with a cache of verified tokens; a cached
        token is still refused from its ``exp`` on."""
        now = self.clock()
        cached = self._tokens.get(header) if header else None
        if cached is not None:
            if now < cached.expires_at:  # type: ignore[operator]
                return cached
            del self._tokens[header]  # type: ignore[arg-type]
        check = auth.check_authorization(header, self.ring, now=now)
        if check.ok and header and check.expires_at is not None:
            if len(self._tokens) >= 100_000:
                self._tokens.clear()
            self._tokens[header] = check
        return check

    def rate_limit(self, header: str, check: auth.TokenCheck) -> int | None:
        """None when the request may go on, else the ``Retry-After`` seconds of a 429."""
        if self.limiter is None or check.client_id is None:
            return None
        wait = self.limiter.take(hashlib.sha256(header.encode()).hexdigest()[:32])
        return None if wait <= 0 else retry_after_seconds(wait)

    # -- CORS --------------------------------------------------------------------------------------
    def allowed_origin(self, origin: str | None) -> str | None:
        if not origin:
            return None
        if self.any_origin:
            return "*"
        return origin if origin in self.origins else None

    def preflight(self, request: web.Request) -> web.Response | None:
        """The answer to a CORS preflight (``OPTIONS`` with ``Origin`` and
        ``Access-Control-Request-Method``), else None."""
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        allowed = self.allowed_origin(request.headers.get("Origin"))
        if allowed is None:
            return web.Response(status=403, text="CORS origin not allowed")
        response = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
        response.headers["Access-Control-Allow-Headers"] = request.headers.get(
            "Access-Control-Request-Headers", CORS_HEADERS)
        response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
        self.add_cors(request, response)
        return response

    def add_cors(self, request: web.Request, response: web.StreamResponse) -> None:
        allowed = self.allowed_origin(request.headers.get("Origin"))
        if allowed is None or response.prepared:
            return
        response.headers["Access-Control-Allow-Origin"] = allowed
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE
        if allowed != "*":
            response.headers["Vary"] = "Origin"
