"""Routes: ``GET /v1/me/player/recently-played`` and ``GET /v1/me/top/tracks|artists``.

Reads only the replica's personalization read interface (``history``, ``taste_profile``); the
derivation (plays per playback, time-range windows, ranking) is :mod:`processors.top_items`.

Recently played is Spotify's cursor paging: ``limit`` 1..50 (default 20), ``after`` or ``before``
(unix ms, exclusive; not both: 400); ``cursors`` are the page's newest (``after``) and oldest
(``before``) ``played_at`` in ms, ``next`` continues in the direction asked (older with ``before`` or
no cursor, newer with ``after``), null when nothing lies beyond. Items are
``{"track", "played_at" (ISO 8601, ms, Z), "context": null}`` (history does not keep the context).
As on Spotify, cursors are times: two plays of the same millisecond split across a page boundary
lose the second one to the exclusive cursor. ``total`` is the number of plays the history holds.
"""

from __future__ import annotations

from aiohttp import web

from core.timefmt import format_ts
from playback import render
from playback.parsing import INT_MAX, ApiError, base_url, int_param, json_response, user_id
from playback.service import api_of
from processors import top_items

routes = web.RouteTableDef()
MS_MAX = 2**53  # a unix-ms cursor bound (JSON-safe integers)


@routes.get("/v1/me/player/recently-played", allow_head=False)
async def recently_played(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    user = api.user(request)
    limit = int_param(request, "limit", 20, 1, 50)
    after = int_param(request, "after", -1, 0, MS_MAX)
    before = int_param(request, "before", -1, 0, MS_MAX)
    if after >= 0 and before >= 0:
        raise ApiError(400, "Only one of after and before may be given")
    plays = top_items.plays(api.replica.history(uid))
    page, more = top_items.cursor_page(plays, limit, after=after if after >= 0 else None,
                                       before=before if before >= 0 else None)
    replica, base, now_ms, market = api.replica, base_url(request), api.now_ms(), user.get("country")
    items = []
    with replica.lock:
        for p in page:
            canon = replica.canonical_id(p["track_id"]) or p["track_id"]
            items.append({"track": render.track_object(replica, base, canon, market, now_ms),
                          "played_at": format_ts(p["played_at"]), "context": None})
    href = f"{base}/v1/me/player/recently-played"
    cursors: dict[str, str] = {}  # an empty page: no cursors (Spotify types it an object)
    nxt = None
    if page:
        cursors = {"after": str(page[0]["played_at"]), "before": str(page[-1]["played_at"])}
        if more:
            nxt = (f"{href}?after={page[0]['played_at']}&limit={limit}" if after >= 0
                   else f"{href}?before={page[-1]['played_at']}&limit={limit}")
    query = f"?limit={limit}" + (f"&after={after}" if after >= 0 else "") + (f"&before={before}" if before >= 0 else "")
    return json_response({"href": href + query, "items": items, "limit": limit, "next": nxt,
                          "cursors": cursors, "total": len(plays)})


@routes.get("/v1/me/top/tracks", allow_head=False)
@routes.get("/v1/me/top/artists", allow_head=False)
async def top(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    user = api.user(request)
    kind = request.path.rstrip("/").rsplit("/", 1)[1]  # tracks | artists (one route each, as Spotify's)
    time_range = request.query.get("time_range") or "medium_term"
    if time_range not in top_items.TIME_RANGES:
        raise ApiError(400, f"Invalid time_range: expected one of {', '.join(top_items.TIME_RANGES)}")
    limit = int_param(request, "limit", 20, 1, 50)
    offset = int_param(request, "offset", 0, 0, INT_MAX)
    replica, base, now_ms = api.replica, base_url(request), api.now_ms()
    if kind == "tracks":
        ranked = top_items.top_tracks(replica.history(uid), now_ms, time_range)
    else:
        ranked = top_items.top_artists(replica.taste_profile(uid), now_ms, time_range)
    with replica.lock:
        if kind == "tracks":
            items = [render.track_object(replica, base, replica.canonical_id(t) or t, user.get("country"), now_ms)
                     for t in ranked[offset:offset + limit]]
        else:
            items = [render.artist_object(replica, base, a) for a in ranked[offset:offset + limit]]
    return json_response(render.page(f"{base}/v1/me/top/{kind}", items, offset, limit, len(ranked),
                                     f"&time_range={time_range}"))
