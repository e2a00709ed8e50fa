"""The playback API's aiohttp application: the middleware (auth, readiness, body limit, errors,
metrics), the routes of :mod:`playback.routes`, and ``playlog api``'s :func:`run` (replica feed +
Kafka publisher).

Readiness. Until the replica is ready (caught up with the end offsets its feed saw at start, see
playback/replica.py) every route but :data:`ALWAYS_SERVED` (``/healthz``, ``/metrics``,
``/openapi.json``) answers 503 with ``Retry-After: CATCHING_UP_RETRY_S`` and the Spotify-style error
body: the API never answers from a half-built view. A bad or missing token is still 401 first.
Every 503 the API gives (catching up, a write Kafka did not acknowledge) carries ``Retry-After``.

OAuth (playback/oauth/): ``/authorize`` and ``/api/token`` are served whatever the replicas' state;
every ``/v1`` token is checked against the token key ring, then the per-token rate limit of OAuth
clients' tokens (429 with ``Retry-After``; ``playlog token`` tokens are not limited), then the route's scope (playback/oauth/scopes.py: 403 "Insufficient client scope",
401 for an app token on a route that needs a user). CORS preflights are answered before anything else
and every answer to an allowed ``Origin`` carries ``Access-Control-Allow-Origin``.

``/rest/*`` is the OpenSubsonic API (playback/subsonic/): its own credentials, readiness answer and
error model, so this middleware only measures it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from playback.oauth import scopes
from playback.oauth import server as oauth
from playback.oauth.guard import RATE_LIMITED, Guard
from playback.parsing import MAX_BODY, USER_KEY, ApiError, error_response
from playback.publisher import KafkaPublisher
from playback.replica import Replica
from playback.routes import TABLES
from playback.service import API_KEY, WRITE_RETRY_S, PlaybackApi
from playback.subsonic import routes as subsonic

log = logging.getLogger(__name__)

ALWAYS_SERVED = frozenset({"/healthz", "/metrics", "/openapi.json"})
CATCHING_UP_RETRY_S = 5  # Retry-After while the replicas rebuild (a restart on ~1.6M records: tens of s)


def _route_name(request: web.Request) -> str:
    info = request.match_info
    route = info.route if info is not None else None
    if route is None or route.resource is None:
        return "unmatched"
    return route.resource.canonical


async def _measured(api: PlaybackApi, request: web.Request, route: str, began: float,
                    handler: Callable) -> web.StreamResponse:
    """A ``/rest`` answer (playback/subsonic/routes.py never raises but for a client gone away), measured."""
    response = await handler(request)
    api.latency.labels(request.method, route).observe(time.perf_counter() - began)
    api.responses.labels(request.method, route, str(response.status)).inc()
    return response


def build_app(api: PlaybackApi) -> web.Application:
    """The application serving ``api``: every ``/v1`` route needs a valid bearer token with its scope."""
    guard = Guard(api.settings, api.clock)

    @web.middleware
    async def cors(request: web.Request, handler: Callable) -> web.StreamResponse:
        preflight = guard.preflight(request)
        if preflight is not None:
            return preflight
        response = await handler(request)
        guard.add_cors(request, response)
        return response

    @web.middleware
    async def middleware(request: web.Request, handler: Callable) -> web.StreamResponse:
        began = time.perf_counter()
        route = _route_name(request)
        try:
            path = request.path
            if subsonic.is_subsonic(path):  # its own credentials, readiness answer and error model
                return await _measured(api, request, route, began, handler)
            if path in oauth.PATHS:  # OAuth's own error model; needs no replica
                return await _measured(api, request, route, began, handler)
            if path.startswith("/v1/"):
                header = request.headers.get("Authorization")
                check = guard.authorize(header)
                if not check.ok:
                    raise ApiError(401, check.reason)
                retry = guard.rate_limit(header or "", check)
                if retry is not None:
                    raise ApiError(429, RATE_LIMITED, retry_after=retry)
                decision = scopes.decide(request.method, path, check.scopes, check.user_id is not None)
                if not decision.allowed:
                    raise ApiError(decision.status, decision.message)
                request[USER_KEY] = check.user_id or ""  # "": an app token, on a route needing no user
            if path not in ALWAYS_SERVED and not api.replica.ready:
                raise ApiError(503, "Service unavailable: the read replicas are catching up with the log, "
                                    "retry shortly", retry_after=CATCHING_UP_RETRY_S)
            if request.content_length is not None and request.content_length > MAX_BODY:
                raise ApiError(413, "Request body too large")
            response = await handler(request)
        except ApiError as exc:
            extra = dict(exc.extra)
            retry_after = extra.pop("retry_after", None)
            response = error_response(exc.status, exc.message, **extra)
            if retry_after is not None:
                response.headers["Retry-After"] = str(retry_after)
        except web.HTTPException as exc:
            message = {404: "Service not found", 405: "Method not allowed"}.get(exc.status, exc.reason)
            response = error_response(exc.status, message)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = error_response(500, "Internal server error")
        if response.status == 503 and "Retry-After" not in response.headers:
            response.headers["Retry-After"] = str(WRITE_RETRY_S)
        api.latency.labels(request.method, route).observe(time.perf_counter() - began)
        api.responses.labels(request.method, route, str(response.status)).inc()
        return response

    app = web.Application(middlewares=[cors, middleware], client_max_size=MAX_BODY)
    app[API_KEY] = api
    app.router.add_routes(oauth.OAuthServer(api.settings, api.clock).routes())
    for table in TABLES:
        app.router.add_routes(table)
    subsonic.setup(app)
    return app


def run(settings: Any, host: str, port: int) -> None:
    """``playlog api``: start the replica consumer and the producer, serve until Ctrl-C / SIGTERM.

    The port is bound at once (``/healthz`` tells how far the replicas are); ``/v1`` answers 503 until
    the replicas caught up (see the module doc)."""
    replica = Replica()
    replica.start(settings)
    publisher = KafkaPublisher(settings)
    api = PlaybackApi(settings, replica, publisher)
    app = build_app(api)

    async def on_startup(app: web.Application) -> None:
        async def report() -> None:
            began = time.monotonic()
            while not await asyncio.to_thread(replica.wait_ready, 30.0):
                log.info("replica catching up (%.0fs): %s %s", time.monotonic() - began, replica.progress(),
                         replica.last_error or "")
            log.info("replica ready after %.1fs: %s", time.monotonic() - began, replica.stats())
        app[_REPORT_KEY] = asyncio.get_running_loop().create_task(report())

    async def on_cleanup(app: web.Application) -> None:
        app[_REPORT_KEY].cancel()
        publisher.close()
        replica.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    web.run_app(app, host=host, port=port, print=None, access_log=None, handle_signals=True)


_REPORT_KEY = web.AppKey("replica_report", asyncio.Task)
