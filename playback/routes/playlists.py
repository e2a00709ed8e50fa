"""Routes: playlists (create, read, add / remove / reorder or replace tracks); writes produce
``playlist.*`` events and answer with the new ``snapshot_id``.

``snapshot_id`` given with an edit must be the current one, else 409 (optimistic concurrency).
Playlists are readable by anyone with the id (as on Spotify), editable by the owner and, when
collaborative, by collaborators. An edit is folded first with ``processors.playlists.evolve``: one the
fold refuses is answered with 403 (not allowed) or 400 and never produced.

Integer inputs (``position``, ``range_start``, ``range_length``, ``insert_before``) are checked to
their event field's range first (0 .. 2^31 - 1: playback/parsing.py), 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from playback import blends, recs, render
from playback.parsing import (
    INT_MAX,
    REQUIRED,
    ApiError,
    base_url,
    bool_field,
    int_field,
    int_param,
    json_body,
    json_object,
    json_response,
    new_id,
    parse_uri,
    path_id,
    user_id,
    valid_id,
)
from playback.service import PlaybackApi, api_of
from processors import playlists as playlists_fold

routes = web.RouteTableDef()


def _playlist(api: PlaybackApi, request: web.Request) -> dict:
    pid = path_id(request)
    if blends.members(pid) is not None:  # a Blend (playback/blends.py): generated, read-only, members only
        if request.method not in ("GET", "HEAD"):
            raise ApiError(403, "A Blend is generated daily from its members' tastes and cannot be edited")
        state = blends.blend_state(api.replica, pid, user_id(request), api.now_ms())
        if state is None:
            raise ApiError(404, "Blend not found: its two users must follow each other, and only they can read it")
        return state
    # a playlist, or one of the caller's recommendation shelves (playback/recs.py: recs:<user>:<shelf>)
    state = recs.playlist_state(api.replica, user_id(request), pid, api.now_ms())
    if state is None:
        raise ApiError(404, "Playlist not found")
    return state


async def _edit(api: PlaybackApi, state: dict, event: dict, status: int) -> web.Response:
    """Fold the edit over the playlist (403/400 if refused), produce it, answer the new snapshot."""
    _, outputs = playlists_fold.evolve(state, event)
    for out in outputs:
        if out.get("kind") == "dead_letter":
            reason = out["reason"]
            code = 403 if "may not edit" in reason or "not the owner" in reason else 400
            raise ApiError(code, reason)
    await api.produce([event])
    after = api.replica.playlist_state(state["playlist_id"])
    return json_response({"snapshot_id": after["snapshot_id"]}, status)


def _check_snapshot(body: dict, state: dict) -> None:
    snap = body.get("snapshot_id")
    if snap is not None and snap != state["snapshot_id"]:
        raise ApiError(409, "snapshot_id is not the playlist's current snapshot")


def _track_ids(api: PlaybackApi, uris: Any) -> list[str]:
    """1 to 100 track uris -> canonical track ids (400 for an unknown track)."""
    if not isinstance(uris, list) or not 0 < len(uris) <= 100:
        raise ApiError(400, "Invalid uris: expected 1 to 100 track uris")
    out = []
    for u in uris:
        t = parse_uri(u)[1]
        canon = api.replica.canonical_id(t)
        if canon is None:
            raise ApiError(400, f"Unknown track: {u}")
        out.append(canon)
    return out


@routes.post("/v1/users/{user_id}/playlists")
async def create_playlist(request: web.Request) -> web.Response:
    uid = user_id(request)
    owner = valid_id(request.match_info["user_id"], "user id")
    if owner != uid:
        raise ApiError(403, "You cannot create a playlist for another user")
    return await _create(request, uid)


@routes.post("/v1/me/playlists")
async def create_my_playlist(request: web.Request) -> web.Response:
    return await _create(request, user_id(request))


async def _create(request: web.Request, uid: str) -> web.Response:
    api = api_of(request)
    body = await json_object(request)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 300:
        raise ApiError(400, "Missing or invalid playlist name")
    public, collaborative = bool_field(body, "public", True), bool_field(body, "collaborative", False)
    if public and collaborative:
        raise ApiError(400, "A collaborative playlist cannot be public")
    pid = new_id()
    event = api.event("playlist.created", playlist_id=pid, owner_id=uid, name=name,
                      collaborative=collaborative, public=public)
    await api.produce([event])
    state = api.replica.playlist_state(pid)
    return json_response(render.playlist_object(api.replica, base_url(request), state, api.now_ms()), 201)


@routes.get("/v1/playlists/{id}", allow_head=False)
async def get_playlist(request: web.Request) -> web.Response:
    api = api_of(request)
    return json_response(render.playlist_object(api.replica, base_url(request), _playlist(api, request),
                                                api.now_ms()))


@routes.post("/v1/playlists/{id}/tracks")
@routes.post("/v1/playlists/{id}/items")
async def add_tracks(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    state = _playlist(api, request)
    raw = await json_body(request, required=False)
    body = {"uris": raw} if isinstance(raw, list) else raw if raw is not None else {}  # a bare array of uris
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object or an array of uris")
    uris = body.get("uris")
    if uris is None and request.query.get("uris"):
        uris = request.query["uris"].split(",")
    position = int_field(body, "position", None, 0, INT_MAX, nullable=True)
    if position is None and request.query.get("position"):
        position = int_param(request, "position", None, 0, INT_MAX)
    _check_snapshot(body, state)
    event = api.event("playlist.tracks_added", playlist_id=state["playlist_id"], user_id=uid,
                      track_ids=_track_ids(api, uris), position=position)
    return await _edit(api, state, event, 201)


def _removal_uris(raw: Any) -> list[Any]:
    """The uris of a removal body: ``{"items": [{"uri"}...]}`` (since Feb 2026), ``{"tracks": [...]}``
    (before), ``{"uris": [...]}``, or a bare array of uris or ``{"uri"}`` objects."""
    entries = raw
    if isinstance(raw, dict):
        entries = next((raw[k] for k in ("items", "tracks", "uris") if k in raw), None)
    if not isinstance(entries, list) or not 0 < len(entries) <= 100:
        raise ApiError(400, 'Expected "items" (or "tracks"): [{"uri": ...}, ...], "uris": [...] or an array '
                            "of uris (1 to 100)")
    out = []
    for e in entries:
        if isinstance(e, dict):
            if e.get("positions") is not None:
                raise ApiError(400, "Removing specific positions is not supported: every occurrence of a "
                                    "uri is removed; leave out positions")
            out.append(e.get("uri"))
        else:
            out.append(e)
    return out


@routes.delete("/v1/playlists/{id}/tracks")
@routes.delete("/v1/playlists/{id}/items")
async def remove_tracks(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    state = _playlist(api, request)
    raw = await json_body(request)
    ids = [parse_uri(u)[1] for u in _removal_uris(raw)]
    ids = [api.replica.canonical_id(t) or t for t in ids]
    _check_snapshot(raw if isinstance(raw, dict) else {}, state)
    event = api.event("playlist.tracks_removed", playlist_id=state["playlist_id"], user_id=uid, track_ids=ids)
    return await _edit(api, state, event, 200)


@routes.put("/v1/playlists/{id}/tracks")
@routes.put("/v1/playlists/{id}/items")
async def reorder_tracks(request: web.Request) -> web.Response:
    """Reorder (``range_start``, ``insert_before``, ``range_length``, ``snapshot_id``) or replace
    (``uris`` in the body, a bare array of uris, or the ``uris`` query parameter; an empty list
    empties the playlist)."""
    api = api_of(request)
    uid = user_id(request)
    state = _playlist(api, request)
    raw = await json_body(request, required=False)
    body = {"uris": raw} if isinstance(raw, list) else raw if raw is not None else {}
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object or an array of uris")
    if "uris" not in body and request.query.get("uris") is not None:
        body = {**body, "uris": [u for u in request.query["uris"].split(",") if u]}
    _check_snapshot(body, state)
    pid = state["playlist_id"]
    if "uris" in body:  # replace: remove what is there, add the new list (two events, one key: in order)
        track_ids = _track_ids(api, body["uris"]) if body["uris"] != [] else []
        current = list(dict.fromkeys(playlists_fold.track_ids(state)))
        if not playlists_fold.can_edit_tracks(state, uid):
            raise ApiError(403, f"user {uid!r} may not edit the tracks of playlist {pid!r}")
        events = []
        if current:
            events.append(api.event("playlist.tracks_removed", playlist_id=pid, user_id=uid, track_ids=current))
        if track_ids:
            events.append(api.event("playlist.tracks_added", playlist_id=pid, user_id=uid, track_ids=track_ids,
                                    position=None))
        if events:
            await api.produce(events)
        return json_response({"snapshot_id": api.replica.playlist_state(pid)["snapshot_id"]}, 200)
    if "range_start" not in body and "insert_before" not in body:
        raise ApiError(400, "Expected range_start and insert_before (reorder) or uris (replace)")
    fields = {name: int_field(body, name, default, 0, INT_MAX)
              for name, default in (("range_start", REQUIRED), ("insert_before", REQUIRED), ("range_length", 1))}
    event = api.event("playlist.tracks_moved", playlist_id=pid, user_id=uid, **fields)
    return await _edit(api, state, event, 200)


@routes.get("/v1/playlists/{id}/tracks", allow_head=False)
@routes.get("/v1/playlists/{id}/items", allow_head=False)
async def get_playlist_items(request: web.Request) -> web.Response:
    """A page of the playlist's entries (``limit`` 1..50, default 20 on /items, 100 max on /tracks)."""
    api = api_of(request)
    state = _playlist(api, request)
    limit = int_param(request, "limit", 20, 1, 100)
    offset = int_param(request, "offset", 0, 0, INT_MAX)
    kind = request.path.rsplit("/", 1)[1]
    obj = render.playlist_object(api.replica, base_url(request), state, api.now_ms())
    entries = obj["tracks"]["items"]
    return json_response(render.page(f"{base_url(request)}/v1/playlists/{obj['id']}/{kind}",
                                     entries[offset:offset + limit], offset, limit, len(entries)))


@routes.get("/v1/me/playlists", allow_head=False)
async def my_playlists(request: web.Request) -> web.Response:
    """The playlists the token user owns, in id order (paged)."""
    api = api_of(request)
    uid = user_id(request)
    limit = int_param(request, "limit", 20, 1, 50)
    offset = int_param(request, "offset", 0, 0, INT_MAX)
    base, now_ms = base_url(request), api.now_ms()
    pids = api.replica.playlists_of(uid)
    items = []
    for pid in pids[offset:offset + limit]:
        state = api.replica.playlist_state(pid)
        if state is not None:
            obj = render.playlist_object(api.replica, base, state, now_ms)
            for key in ("tracks", "items"):
                obj[key] = {"href": obj[key]["href"], "total": obj[key]["total"]}
            items.append(obj)
    return json_response(render.page(f"{base}/v1/me/playlists", items, offset, limit, len(pids)))
