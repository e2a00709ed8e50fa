"""Routes: ``/v1/me/player`` and its controls (play, transfer, pause, seek, next, previous, queue, volume,
shuffle, repeat).

Every command takes ``device_id`` (query; ``play`` also in its body): a device the user registered
(404 ``Device not found`` naming it otherwise); without it, the active device, else the user's first
device, else 404 ``NO_ACTIVE_DEVICE``.

Every control is a ``player.*`` event. It is folded first with the worker's own pure fold
(``processors.player.evolve``) over the replica's state: a command the fold would refuse (nothing to
resume, bad position) is answered with 403 and never produced. Commands are produced without waiting
for the broker unless ``PlaybackApi.ack_player_commands``; play and queue check rights first.

Every integer input is checked to its event field's range first (``position_ms``, ``offset.position``,
``volume_percent``: playback/parsing.py): 400 naming the field, nothing produced.
"""

from __future__ import annotations

from aiohttp import web

from playback import recs, render
from playback.parsing import (
    INT_MAX,
    MAX_ARRAY_ITEMS,
    ApiError,
    base_url,
    bool_field,
    int_field,
    int_param,
    json_object,
    json_response,
    parse_uri,
    user_id,
)
from playback.service import PlaybackApi, api_of
from processors import library as library_fold
from processors import player as player_fold
from processors import playlists as playlists_fold

routes = web.RouteTableDef()


def _unknown_device(device_id: object) -> ApiError:
    shown = repr(device_id)[:80]
    return ApiError(404, f"Device not found: {shown} is not one of your registered devices "
                         "(GET /v1/me/player/devices lists them)")


def _device(request: web.Request, user: dict, state: dict | None, body: dict | None = None) -> str:
    """The device the command is for: ``device_id`` (query or body), else the active one, else the first."""
    devices = render.devices(user)
    device_id = request.query.get("device_id") or (body or {}).get("device_id")
    if device_id is not None:
        if not isinstance(device_id, str) or device_id not in devices:
            raise _unknown_device(device_id)
        return device_id
    if state and state.get("active_device"):
        return state["active_device"]
    if devices:
        return sorted(devices)[0]
    raise ApiError(404, "Player command failed: No active device found", reason="NO_ACTIVE_DEVICE")


# Spotify's PlayerError reasons for what the fold refuses (its dead-letter reason's words -> the code)
_REASONS = (("no next track", "NO_NEXT_TRACK"), ("nothing to play", "NOT_PLAYING_TRACK"))


async def _command(api: PlaybackApi, uid: str, event: dict) -> None:
    """Fold the command over the user's player state (403 if refused), then produce it."""
    state = api.replica.player_state(uid)
    _, outputs = player_fold.evolve(state, event)
    for out in outputs:
        if out.get("kind") == "dead_letter":
            reason = next((code for words, code in _REASONS if words in out["reason"]), "UNKNOWN")
            raise ApiError(403, f"Player command failed: {out['reason']}", reason=reason)
    await api.produce([event], wait=api.ack_player_commands)


def _context_tracks(api: PlaybackApi, uid: str, kind: str, ctx_id: str) -> list[str]:
    replica = api.replica
    with replica.lock:
        if kind == "album":
            return replica.album_tracks(ctx_id)
        if kind == "artist":
            return sorted({c for t in replica.tracks_by_artist(ctx_id) if (c := replica.canonical_id(t))})
        state = recs.playlist_state(replica, uid, ctx_id, api.now_ms())  # a playlist or one of uid's shelves
        return playlists_fold.track_ids(state) if state else []


@routes.put("/v1/me/player/play")
async def play(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    user = api.user(request)
    body = await json_object(request, required=False)
    state = api.replica.player_state(uid)
    device_id = _device(request, user, state, body)
    position_ms = int_field(body, "position_ms", 0, 0, INT_MAX)
    context_uri = None
    if "uris" in body:
        uris = body["uris"]
        if not isinstance(uris, list) or not 0 < len(uris) <= 100:
            raise ApiError(400, "Invalid uris: expected 1 to 100 track uris")
        raw_ids = [parse_uri(u)[1] for u in uris]
    elif "context_uri" in body:
        kind, ctx_id = parse_uri(body["context_uri"], ("album", "playlist", "artist"))
        context_uri = f"{body['context_uri'].split(':')[0]}:{kind}:{ctx_id}"  # internal id (playback/ids.py)
        raw_ids = _context_tracks(api, uid, kind, ctx_id)
        if not raw_ids:
            raise ApiError(404, f"Context not found or empty: {context_uri}")
    else:
        # no body: resume on the device
        await _command(api, uid, api.event("player.resumed", user_id=uid, device_id=device_id))
        return web.Response(status=204)
    if len(raw_ids) > MAX_ARRAY_ITEMS:  # the queue of a player.play_requested event holds at most that
        raise ApiError(400, f"Invalid context_uri: the context has {len(raw_ids)} tracks, "
                            f"at most {MAX_ARRAY_ITEMS} can be queued")
    track_ids = []
    for t in raw_ids:
        canon = api.replica.canonical_id(t)
        track_ids.append(canon if canon is not None else t)
    offset = 0
    off = body.get("offset")
    if off is not None:
        if not isinstance(off, dict):
            raise ApiError(400, "Invalid offset: expected {\"position\": n} or {\"uri\": ...}")
        if "position" in off:
            offset = int_field(off, "position", 0, 0, INT_MAX, label="offset.position")
            if offset >= len(track_ids):
                raise ApiError(400, f"Invalid offset.position: the context has {len(track_ids)} tracks")
        elif "uri" in off:
            t = parse_uri(off["uri"])[1]
            t = api.replica.canonical_id(t) or t
            if t not in track_ids:
                raise ApiError(400, "Invalid offset uri: not in the context")
            offset = track_ids.index(t)
        else:
            raise ApiError(400, "Invalid offset: expected position or uri")
    api.check_playable(track_ids[offset], user)
    event = api.event("player.play_requested", user_id=uid, device_id=device_id, track_ids=track_ids,
                      context_uri=context_uri, offset=offset, position_ms=position_ms)
    await _command(api, uid, event)
    return web.Response(status=204)


def _playing(api: PlaybackApi, uid: str) -> dict | None:
    """The user's player state when a track is loaded on an active device, else None (Spotify: 204)."""
    state = api.replica.player_state(uid)
    if state is None or state.get("item") is None or state.get("active_device") is None:
        return None
    return state


@routes.get("/v1/me/player", allow_head=False)
async def get_player(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    state = _playing(api, uid)
    if state is None:
        return web.Response(status=204)
    user = api.replica.users.get(uid)
    now_ms = api.now_ms()
    return json_response(render.playback_state(api.replica, base_url(request), user, state, now_ms))


@routes.get("/v1/me/player/currently-playing", allow_head=False)
async def currently_playing(request: web.Request) -> web.Response:
    """The playback state's track part (204 when nothing is playing), as Spotify answers it."""
    api = api_of(request)
    uid = user_id(request)
    state = _playing(api, uid)
    if state is None:
        return web.Response(status=204)
    user = api.replica.users.get(uid)
    full = render.playback_state(api.replica, base_url(request), user, state, api.now_ms())
    keep = ("context", "timestamp", "progress_ms", "is_playing", "item", "currently_playing_type", "actions")
    return json_response({k: full[k] for k in keep})


@routes.get("/v1/me/player/devices", allow_head=False)
async def get_devices(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    private = library_fold.private_now(api.replica.library_state(uid))
    return json_response(render.device_list(api.replica.users.get(uid), api.replica.player_state(uid), private))


@routes.get("/v1/me/player/queue", allow_head=False)
async def get_queue(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    return json_response(render.queue_object(api.replica, base_url(request), api.replica.users.get(uid),
                                             api.replica.player_state(uid), api.now_ms()))


@routes.put("/v1/me/player")
async def transfer(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    user = api.user(request)
    body = await json_object(request)
    ids = body.get("device_ids")
    if not isinstance(ids, list) or len(ids) != 1 or not isinstance(ids[0], str):
        raise ApiError(400, "device_ids must hold exactly one device id")
    if ids[0] not in render.devices(user):
        raise _unknown_device(ids[0])
    if request.query.get("device_id") and request.query["device_id"] != ids[0]:
        raise ApiError(400, "device_id (query) and device_ids (body) name different devices")
    play = bool_field(body, "play", False)
    await _command(api, uid, api.event("player.transferred", user_id=uid, device_id=ids[0], play=play))
    return web.Response(status=204)


@routes.put("/v1/me/player/pause")
async def pause(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    user = api.user(request)
    state = api.replica.player_state(uid)
    device_id = _device(request, user, state)
    position = player_fold.progress_ms(state, api.now_ms()) if state and state.get("item") else 0
    await _command(api, uid, api.event("player.paused", user_id=uid, device_id=device_id, position_ms=position))
    return web.Response(status=204)


@routes.put("/v1/me/player/seek")
async def seek(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    user = api.user(request)
    position = int_param(request, "position_ms", None, 0, INT_MAX)
    state = api.replica.player_state(uid)
    device_id = _device(request, user, state)
    await _command(api, uid, api.event("player.seeked", user_id=uid, device_id=device_id, position_ms=position))
    return web.Response(status=204)


async def _skip(request: web.Request, direction: str) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    user = api.user(request)
    state = api.replica.player_state(uid)
    device_id = _device(request, user, state)
    await _command(api, uid, api.event("player.skipped_to", user_id=uid, device_id=device_id,
                                       direction=direction))
    return web.Response(status=204)


@routes.post("/v1/me/player/next")
async def skip_next(request: web.Request) -> web.Response:
    return await _skip(request, "next")


@routes.post("/v1/me/player/previous")
async def skip_previous(request: web.Request) -> web.Response:
    return await _skip(request, "previous")


@routes.post("/v1/me/player/queue")
async def queue(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    user = api.user(request)
    raw = request.query.get("uri")
    if not raw:
        raise ApiError(400, "Missing required parameter uri")
    _device(request, user, api.replica.player_state(uid))  # a device_id must be the user's
    track_id = parse_uri(raw)[1]
    canon = api.replica.canonical_id(track_id)
    if canon is None:
        raise ApiError(404, "Non existing id: track not found")
    api.check_playable(canon, user)
    await _command(api, uid, api.event("player.queued", user_id=uid, track_id=canon))
    return web.Response(status=204)


@routes.put("/v1/me/player/volume")
async def volume(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    user = api.user(request)
    percent = int_param(request, "volume_percent", None, 0, 100)
    state = api.replica.player_state(uid)
    device_id = _device(request, user, state)
    await _command(api, uid, api.event("player.volume_set", user_id=uid, device_id=device_id,
                                       volume_percent=percent))
    return web.Response(status=204)


_BOOLS = {"true": True, "false": False}


def _required_state(request: web.Request) -> str:
    raw = request.query.get("state")
    if raw is None or raw == "":
        raise ApiError(400, "Missing required parameter state")
    return raw


async def _mode_command(request: web.Request, etype: str, **fields: object) -> web.Response:
    """A player mode change (shuffle, repeat) addressed to the active or the given device."""
    api = api_of(request)
    uid = user_id(request)
    user = api.user(request)
    device_id = _device(request, user, api.replica.player_state(uid))
    await _command(api, uid, api.event(etype, user_id=uid, device_id=device_id, **fields))
    return web.Response(status=204)


@routes.put("/v1/me/player/shuffle")
async def shuffle(request: web.Request) -> web.Response:
    """``?state=true|false``: a ``player.shuffle_set`` event (the fold's order: processors/player.py)."""
    raw = _required_state(request)
    if raw.lower() not in _BOOLS:
        raise ApiError(400, f"Invalid state: expected true or false, got {raw[:40]!r}")
    return await _mode_command(request, "player.shuffle_set", shuffle=_BOOLS[raw.lower()])


@routes.put("/v1/me/player/repeat")
async def repeat(request: web.Request) -> web.Response:
    """``?state=track|context|off``: a ``player.repeat_set`` event."""
    raw = _required_state(request)
    if raw not in player_fold.REPEAT_STATES:
        raise ApiError(400, f"Invalid state: expected track, context or off, got {raw[:40]!r}")
    return await _mode_command(request, "player.repeat_set", repeat=raw)
