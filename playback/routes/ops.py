"""Routes outside ``/v1`` (no token): ``/openapi.json``, ``/metrics`` (Prometheus), ``/healthz``
(200 once the replica caught up, else 503)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import generate_latest

from playback.parsing import base_url, json_response
from playback.service import api_of

routes = web.RouteTableDef()


@routes.get("/openapi.json", allow_head=False)
async def openapi(request: web.Request) -> web.Response:
    from playback.openapi import spec

    return json_response(spec(base_url(request)))


@routes.get("/metrics", allow_head=False)
async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(api_of(request).registry),
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


@routes.get("/healthz", allow_head=False)
async def healthz(request: web.Request) -> web.Response:
    r = api_of(request).replica
    body = {"ready": r.ready, "error": r.last_error, **r.stats()}
    return json_response(body, 200 if r.ready else 503)
