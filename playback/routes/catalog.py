"""Routes: ``GET /v1/search`` (field filters in ``q``: playback/search_query.py), tracks, albums (+ their tracks), artists (+ top tracks, albums): catalog
reads from the replica. Path and ``ids`` ids are public ids (playback/ids.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from playback import render
from playback.ids import internal_id, public_id
from playback.parsing import (
    INT_MAX,
    ApiError,
    base_url,
    int_param,
    json_response,
    path_id,
    text_param,
    valid_id,
)
from playback.search_query import parse_query
from playback.service import PlaybackApi, api_of

SEARCH_TYPES = ("track", "artist", "album")

routes = web.RouteTableDef()


def _search_link(base: str, q: str, kind: str, offset: int, limit: int) -> str:
    """A search page's URL, ``q`` percent-encoded (``&``, ``#``, ``:`` and spaces in a query)."""
    query = urlencode({"q": q, "type": kind, "offset": offset, "limit": limit}, quote_via=quote)
    return f"{base}/v1/search?{query}"


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
    try:
        parsed = parse_query(q)  # field filters: artist:, album:, track:, genre:, isrc:, year:
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    market = api.market(request)
    replica = api.replica
    index = replica.search
    if index is None:
        raise ApiError(503, "search is not enabled on this replica")
    base, now_ms = base_url(request), api.now_ms()
    out: dict[str, Any] = {}
    for kind in dict.fromkeys(types):
        hits = index.search(parsed, kind, limit=limit, offset=offset)
        with replica.lock:
            if kind == "track":
                items = [render.track_object(replica, base, t, market, now_ms) for t in hits.ids]
            elif kind == "artist":
                items = [render.artist_object(replica, base, a) for a in hits.ids]
            else:
                items = [render.album_object(replica, base, a) for a in hits.ids]

        def link(at: int, kind: str = kind) -> str:
            return _search_link(base, q, kind, at, limit)

        out[kind + "s"] = {
            "href": link(offset), "items": items, "limit": limit, "offset": offset, "total": hits.total,
            "next": link(offset + limit) if limit and offset + limit < min(hits.total, 1000) else None,
            "previous": link(max(0, offset - limit)) if offset > 0 else None,
        }
    return json_response(out)


@routes.get("/v1/tracks/{id}", allow_head=False)
async def track(request: web.Request) -> web.Response:
    api = api_of(request)
    track_id = path_id(request)
    market = api.market(request)
    canon = api.canonical_track(track_id)
    with api.replica.lock:
        obj = render.track_object(api.replica, base_url(request), canon, market, api.now_ms(),
                                  linked_from=track_id)
    return json_response(obj)


def _ids_param(request: web.Request, most: int) -> list[str]:
    """The ``ids`` query parameter: 1 to ``most`` comma-separated (public) ids -> internal ids."""
    raw = request.query.get("ids", "")
    values = [internal_id(v.strip()) for v in raw.split(",") if v.strip()]
    if not 0 < len(values) <= most:
        raise ApiError(400, f"Invalid ids: expected 1 to {most} comma-separated ids")
    return [valid_id(v) for v in values]


def _album(api: PlaybackApi, request: web.Request, album_id: str) -> dict:
    replica, base = api.replica, base_url(request)
    with replica.lock:
        obj = render.album_object(replica, base, album_id)
        assert obj is not None
        tracks = replica.album_tracks(album_id)
        limit, offset = 50, 0
        items = [render.track_object(replica, base, t, api.market(request), api.now_ms())
                 for t in tracks[offset:offset + limit]]
    for t in items:
        t.pop("album", None)
    return {**obj, "genres": [], "popularity": 0, "copyrights": [], "external_ids": {},
            "tracks": render.page(f"{base}/v1/albums/{obj['id']}/tracks", items, offset, limit, len(tracks))}


@routes.get("/v1/tracks", allow_head=False)
@routes.get("/v1/tracks/", allow_head=False)  # spotipy asks for "tracks/?ids="
async def several_tracks(request: web.Request) -> web.Response:
    api = api_of(request)
    market, base, now_ms = api.market(request), base_url(request), api.now_ms()
    out = []
    for t in _ids_param(request, 50):
        canon = api.replica.canonical_id(t)
        with api.replica.lock:
            out.append(render.track_object(api.replica, base, canon, market, now_ms, linked_from=t)
                       if canon else None)
    return json_response({"tracks": out})


@routes.get("/v1/albums/{id}", allow_head=False)
async def album(request: web.Request) -> web.Response:
    api = api_of(request)
    album_id = path_id(request)
    if album_id not in api.replica.albums:
        raise ApiError(404, "Non existing id: album not found")
    return json_response(_album(api, request, album_id))


@routes.get("/v1/albums", allow_head=False)
@routes.get("/v1/albums/", allow_head=False)  # spotipy asks for "albums/?ids="
async def several_albums(request: web.Request) -> web.Response:
    api = api_of(request)
    return json_response({"albums": [_album(api, request, a) if a in api.replica.albums else None
                                     for a in _ids_param(request, 20)]})


@routes.get("/v1/albums/{id}/tracks", allow_head=False)
@routes.get("/v1/albums/{id}/tracks/", allow_head=False)  # spotipy's album_tracks() path
async def album_tracks(request: web.Request) -> web.Response:
    api = api_of(request)
    album_id = path_id(request)
    if album_id not in api.replica.albums:
        raise ApiError(404, "Non existing id: album not found")
    limit = int_param(request, "limit", 20, 1, 50)
    offset = int_param(request, "offset", 0, 0, INT_MAX)
    replica, base, market = api.replica, base_url(request), api.market(request)
    with replica.lock:
        tracks = replica.album_tracks(album_id)
        items = [render.track_object(replica, base, t, market, api.now_ms()) for t in tracks[offset:offset + limit]]
    for t in items:
        t.pop("album", None)
    return json_response(render.page(f"{base}/v1/albums/{public_id(album_id)}/tracks", items, offset, limit,
                                     len(tracks)))


def _artist_or_404(api: PlaybackApi, request: web.Request) -> str:
    artist_id = path_id(request)
    if artist_id not in api.replica.artists:
        raise ApiError(404, "Non existing id: artist not found")
    return artist_id


@routes.get("/v1/artists/{id}", allow_head=False)
async def artist(request: web.Request) -> web.Response:
    api = api_of(request)
    artist_id = _artist_or_404(api, request)
    with api.replica.lock:
        return json_response(render.artist_object(api.replica, base_url(request), artist_id))


@routes.get("/v1/artists", allow_head=False)
@routes.get("/v1/artists/", allow_head=False)  # spotipy asks for "artists/?ids="
async def several_artists(request: web.Request) -> web.Response:
    api = api_of(request)
    base = base_url(request)
    with api.replica.lock:
        out = [render.artist_object(api.replica, base, a) if a in api.replica.artists else None
               for a in _ids_param(request, 50)]
    return json_response({"artists": out})


@routes.get("/v1/artists/{id}/top-tracks", allow_head=False)
async def artist_top_tracks(request: web.Request) -> web.Response:
    """The artist's 10 most streamed tracks (the replica's stream counts), ties by id."""
    api = api_of(request)
    artist_id = _artist_or_404(api, request)
    replica, base, market = api.replica, base_url(request), api.market(request)
    with replica.lock:
        canon = {c for t in replica.tracks_by_artist(artist_id) if (c := replica.canonical_id(t))}
        top = sorted(canon, key=lambda t: (-replica.streams.get(t, 0), t))[:10]
        items = [render.track_object(replica, base, t, market, api.now_ms()) for t in top]
    return json_response({"tracks": items})


@routes.get("/v1/artists/{id}/albums", allow_head=False)
async def artist_albums(request: web.Request) -> web.Response:
    api = api_of(request)
    artist_id = _artist_or_404(api, request)
    limit = int_param(request, "limit", 20, 1, 50)
    offset = int_param(request, "offset", 0, 0, INT_MAX)
    replica, base = api.replica, base_url(request)
    with replica.lock:
        albums = sorted(replica.albums_by_artist.get(artist_id, ()))
        items = [render.album_object(replica, base, a) for a in albums[offset:offset + limit]]
    return json_response(render.page(f"{base}/v1/artists/{public_id(artist_id)}/albums", items, offset, limit,
                                     len(albums)))
