"""The playback API's aiohttp application: the middleware (auth, body limit, errors, metrics), the
routes of :mod:`playback.routes`, and ``playlog api``'s :func:`run` (replica feed + Kafka publisher)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from playback.parsing import MAX_BODY, USER_KEY, ApiError, error_response
from playback.publisher import KafkaPublisher
from playback.replica import Replica
from playback.routes import TABLES
from playback.service import API_KEY, PlaybackApi

log = logging.getLogger(__name__)


def _route_name(request: web.Request) -> str:
    info = request.match_info
    route = info.route if info is not None else None
    if route is None or route.resource is None:
        return "unmatched"
    return route.resource.canonical


def build_app(api: PlaybackApi) -> web.Application:
    """The application serving ``api``: every ``/v1`` route needs a valid bearer token."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable) -> web.StreamResponse:
        began = time.perf_counter()
        route = _route_name(request)
        try:
            if request.path.startswith("/v1/"):
                check = api.authorize(request.headers.get("Authorization"))
                if not check.ok:
                    raise ApiError(401, check.reason)
                request[USER_KEY] = check.user_id
            if request.content_length is not None and request.content_length > MAX_BODY:
                raise ApiError(413, "Request body too large")
            response = await handler(request)
        except ApiError as exc:
            response = error_response(exc.status, exc.message, **exc.extra)
        except web.HTTPException as exc:
            message = {404: "Service not found", 405: "Method not allowed"}.get(exc.status, exc.reason)
            response = error_response(exc.status, message)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = error_response(500, "Internal server error")
        api.latency.labels(request.method, route).observe(time.perf_counter() - began)
        api.responses.labels(request.method, route, str(response.status)).inc()
        return response

    app = web.Application(middlewares=[middleware], client_max_size=MAX_BODY)
    app[API_KEY] = api
    for table in TABLES:
        app.router.add_routes(table)
    return app


def run(settings: Any, host: str, port: int, *, catch_up_timeout: float = 120.0) -> None:
    """``playlog api``: start the replica consumer and the producer, serve until Ctrl-C / SIGTERM."""
    replica = Replica()
    replica.start(settings)
    publisher = KafkaPublisher(settings)
    api = PlaybackApi(settings, replica, publisher)
    app = build_app(api)

    async def on_startup(app: web.Application) -> None:
        async def catch_up() -> None:
            ok = await asyncio.to_thread(replica.wait_caught_up, catch_up_timeout)
            log.info("replica %s: %s", "caught up" if ok else "not caught up yet", replica.stats())
            while not ok:
                ok = await asyncio.to_thread(replica.wait_caught_up, catch_up_timeout)
        app["catch_up"] = asyncio.get_running_loop().create_task(catch_up())

    async def on_cleanup(app: web.Application) -> None:
        app["catch_up"].cancel()
        publisher.close()
        replica.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    web.run_app(app, host=host, port=port, print=None, access_log=None, handle_signals=True)
