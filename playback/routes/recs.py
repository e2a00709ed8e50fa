"""Routes: ``GET /v1/views/radio`` (a station from a track or artist seed, personalized), Spotify's
``GET /v1/recommendations`` and ``GET /v1/recommendations/available-genre-seeds``.

Ids are public ids (playback/ids.py). Seeds of ``/v1/recommendations``: 1 to 5 in total over
``seed_tracks``, ``seed_artists`` and ``seed_genres`` (comma-separated), else 400; an unknown track or
artist id is 404 naming it; an unknown genre is 400 (see available-genre-seeds). The market is the
``market`` parameter, else the token user's country; without either, 400.
"""

from __future__ import annotations

from aiohttp import web

from playback import recs, render
from playback.ids import internal_id
from playback.ids import public_id as pub
from playback.parsing import ApiError, base_url, int_param, json_response, parse_uri, user_id, valid_id
from playback.service import api_of
from processors.recs import shelves

routes = web.RouteTableDef()
MAX_SEEDS = 5


@routes.get("/v1/views/radio", allow_head=False)
async def radio(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    user = api.user(request)
    raw = request.query.get("seed")
    if not raw:
        raise ApiError(400, "Missing required parameter seed (spotify:track:ID or spotify:artist:ID)")
    kind, seed = parse_uri(raw, ("track", "artist"))
    if kind == "track":
        seed = api.canonical_track(seed)
    elif seed not in api.replica.artists:
        raise ApiError(404, "Non existing id: artist not found")
    limit = int_param(request, "limit", 20, 1, recs.SHELF_SIZE_MAX)
    now_ms = api.now_ms()
    shelf = recs.radio(api.replica, uid, user, now_ms, kind, seed)
    return json_response(recs.shelf_object(api.replica, base_url(request), uid, shelf, user["country"], now_ms,
                                           limit))


def _seeds(request: web.Request, name: str) -> list[str]:
    raw = request.query.get(name, "")
    return [valid_id(internal_id(s.strip()), name) for s in raw.split(",") if s.strip()]


@routes.get("/v1/recommendations", allow_head=False)
async def recommendations(request: web.Request) -> web.Response:
    api = api_of(request)
    replica = api.replica
    tracks, artists, genres = (_seeds(request, n) for n in ("seed_tracks", "seed_artists", "seed_genres"))
    n = len(tracks) + len(artists) + len(genres)
    if not 1 <= n <= MAX_SEEDS:
        raise ApiError(400, f"Invalid seeds: 1 to {MAX_SEEDS} seeds in total (seed_tracks, seed_artists, "
                            f"seed_genres together), got {n}")
    limit = int_param(request, "limit", 20, 1, 100)
    market = api.market(request)
    if market is None:
        raise ApiError(400, "Missing market: give market= or a token of a registered user")
    canon = []
    for t in tracks:
        c = replica.canonical_id(t)
        if c is None or not (replica.tracks.get(c) or {}).get("ingested"):
            raise ApiError(404, f"Non existing id: seed track {pub(t)!r} not found")
        canon.append(c)
    for a in artists:
        if a not in replica.artists:
            raise ApiError(404, f"Non existing id: seed artist {pub(a)!r} not found")
    known = set(recs.genres(replica))
    for g in genres:
        if g not in known:
            raise ApiError(400, f"Invalid seed genre {g!r}: see /v1/recommendations/available-genre-seeds")
    now_ms = api.now_ms()
    uid = user_id(request)
    user = replica.users.get(uid) or {}
    ctx = recs.context(replica, uid, {**user, "country": market}, now_ms, market)
    with replica.lock:
        out = shelves.recommend(recs.lookups(replica, None, market), ctx, canon, artists, genres, limit, market)
    base = base_url(request)
    hrefs = {"TRACK": "tracks", "ARTIST": "artists"}
    seeds = []
    given = dict(zip(canon, tracks, strict=True))
    for s in out["seeds"]:
        sid = given.get(s["id"], s["id"]) if s["type"] == "TRACK" else s["id"]
        kind = hrefs.get(s["type"])
        seeds.append({"id": sid if s["type"] == "GENRE" else pub(sid), "type": s["type"],
                      "href": f"{base}/v1/{kind}/{pub(sid)}" if kind else None,
                      "initialPoolSize": s["initialPoolSize"], "afterFilteringSize": s["afterFilteringSize"],
                      "afterRelinkingSize": s["afterFilteringSize"]})
    with replica.lock:
        items = [render.track_object(replica, base, t, market, now_ms) for t in out["tracks"]]
    return json_response({"seeds": seeds, "tracks": items})


@routes.get("/v1/recommendations/available-genre-seeds", allow_head=False)
async def genre_seeds(request: web.Request) -> web.Response:
    return json_response({"genres": recs.genres(api_of(request).replica)})
