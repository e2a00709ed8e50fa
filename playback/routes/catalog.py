"""Routes: ``GET /v1/search`` and ``GET /v1/tracks/{id}`` (catalog reads from the replica)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from playback import render
from playback.parsing import ApiError, base_url, int_param, json_response, text_param, valid_id
from playback.service import api_of

SEARCH_TYPES = ("track", "artist", "album")

routes = web.RouteTableDef()


@routes.get("/v1/search", allow_head=False)
async def search(request: web.Request) -> web.Response:
    api = api_of(request)
    q = text_param(request, "q")
    if not q:
        raise ApiError(400, "No search query")
    raw_types = request.query.get("type", "track,artist,album")
    types = [t.strip() for t in raw_types.split(",") if t.strip()]
    if not types or any(t not in SEARCH_TYPES for t in types):
        raise ApiError(400, "Bad search type field: use track, artist and/or album")
    limit = int_param(request, "limit", 20, 0, 50)
    offset = int_param(request, "offset", 0, 0, 1000)
    market = api.market(request)
    replica = api.replica
    index = replica.search
    if index is None:
        raise ApiError(503, "search is not enabled on this replica")
    base, now_ms = base_url(request), api.now_ms()
    out: dict[str, Any] = {}
    for kind in dict.fromkeys(types):
        hits = index.search(q, kind, limit=limit, offset=offset)
        with replica.lock:
            if kind == "track":
                items = [render.track_object(replica, base, t, market, now_ms) for t in hits.ids]
            elif kind == "artist":
                items = [render.artist_object(replica, base, a) for a in hits.ids]
            else:
                items = [render.album_object(replica, base, a) for a in hits.ids]
        href = f"{base}/v1/search?q={q}&type={kind}&offset={offset}&limit={limit}"
        out[kind + "s"] = {
            "href": href, "items": items, "limit": limit, "offset": offset, "total": hits.total,
            "next": (f"{base}/v1/search?q={q}&type={kind}&offset={offset + limit}&limit={limit}"
                     if limit and offset + limit < min(hits.total, 1000) else None),
            "previous": (f"{base}/v1/search?q={q}&type={kind}&offset={max(0, offset - limit)}&limit={limit}"
                         if offset > 0 else None),
        }
    return json_response(out)


@routes.get("/v1/tracks/{id}", allow_head=False)
async def track(request: web.Request) -> web.Response:
    api = api_of(request)
    track_id = valid_id(request.match_info["id"])
    market = api.market(request)
    canon = api.canonical_track(track_id)
    with api.replica.lock:
        obj = render.track_object(api.replica, base_url(request), canon, market, api.now_ms(),
                                  linked_from=track_id)
    return json_response(obj)
