"""Route: ``GET /v1/views/home``, personalized shelves (``processors.recs.shelves.home`` through
:mod:`playback.recs`): Discover Weekly, Daily Mix 1..N, "Because you listened to ...", picked for you;
the cold start (no history) is popular in the user's country, then genre picks. Every shelf carries a
``context_uri`` (``spotify:playlist:<public id of recs:<user>:<shelf id>>``) the client plays it with."""

from __future__ import annotations

from aiohttp import web

from playback import recs
from playback.parsing import base_url, int_param, json_response, user_id
from playback.service import api_of

routes = web.RouteTableDef()


@routes.get("/v1/views/home", allow_head=False)
async def home(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    user = api.user(request)
    limit = int_param(request, "limit", 10, 1, recs.SHELF_SIZE_MAX)
    country, now_ms = user["country"], api.now_ms()
    base = base_url(request)
    shelves = recs.home(api.replica, uid, user, now_ms)
    out = [recs.shelf_object(api.replica, base, uid, s, country, now_ms, limit) for s in shelves]
    return json_response({"country": country, "shelves": out})
