"""Routes outside ``/v1`` (no token, served while the replicas catch up): ``/openapi.json``, ``/metrics``
(Prometheus), ``/healthz``: 200 when the API can answer correctly, i.e. the replicas reached the end
offsets seen at start *and* the broker answers (writes can be acknowledged); else 503 with ``error``
saying why (catching up and how far, the broker unreachable, ...)."""

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
    api = api_of(request)
    r = api.replica
    health = getattr(api.publisher, "health", None)
    broker_problem = health() if health is not None else None
    problems = []
    if not r.ready:
        progress = r.progress()
        behind = (f" ({progress['records_behind']} records behind in {progress['partitions_behind']} partitions)"
                  if progress.get("assigned") else "")
        problems.append(f"replicas catching up with the log{behind}" + (f": {r.last_error}" if r.last_error else ""))
    if broker_problem is not None:
        problems.append(f"writes refused: {broker_problem}")
    ready = not problems
    body = {"ready": ready, "replicas_ready": r.ready, "writes_ok": broker_problem is None,
            "error": "; ".join(problems) or r.last_error, **r.stats()}
    return json_response(body, 200 if ready else 503)
