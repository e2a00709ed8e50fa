"""Route: ``GET /v1/views/home``, personalized shelves (``processors.home`` over the replica)."""

from __future__ import annotations

from aiohttp import web

from playback import render
from playback.parsing import base_url, int_param, json_response, user_id
from playback.service import api_of
from processors import home as home_fold

routes = web.RouteTableDef()


@routes.get("/v1/views/home", allow_head=False)
async def home(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    user = api.user(request)
    limit = int_param(request, "limit", 10, 1, 50)
    country, now_ms = user["country"], api.now_ms()
    base = base_url(request)
    replica = api.replica
    with replica.lock:
        shelves = home_fold.home_shelves(
            replica.profiles.get(uid), replica, replica.is_playable,
            replica.popularity.get(country, {}), replica.cooccurrence, country, now_ms,
            shelf_size=limit,
        )
        out = []
        for s in shelves:
            out.append({**s, "items": [render.track_object(replica, base, t, country, now_ms)
                                       for t in s["track_ids"]]})
    return json_response({"country": country, "shelves": out})
