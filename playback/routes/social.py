"""Routes: following artists, users and playlists (Spotify's), the friends' activity feed, the private
session and Blends (this API's own).

Every write is a ``library.*`` event on the caller's library (processors/library.py), produced through
the API's publisher and read back at once through the replica's pending overlay:

- ``PUT`` / ``DELETE /v1/me/following?type=artist|user&ids=a,b`` (or body ``{"ids": [...]}``): one
  ``library.followed`` / ``library.unfollowed`` per id; 204. Unknown artist or user: 404 naming it,
  nothing written; following yourself: 400.
- ``GET /v1/me/following?type=artist&after=&limit=``: Spotify's cursor-paged ``{"artists": {...}}``,
  in artist-id order, ``after`` the last id of the previous page.
- ``GET /v1/me/following/contains?type=&ids=``: ``[bool]``.
- ``PUT /v1/playlists/{id}/followers`` (body ``{"public": bool}``, default true) / ``DELETE``: 200;
  ``GET /v1/playlists/{id}/followers/contains?ids=``: ``[bool]`` (a non-public follow shows only to
  the follower).
- ``PUT /v1/me/player/private-session?state=true|false``: ``library.private_session_set``; 204.
- ``GET /v1/me/friends/activity?limit=``: for each user the caller follows (erased ones left out),
  their latest plays, newest first: ``{"friends": [{"user", "latest_played_at", "plays": [{"track",
  "played_at", "context"}]}]}``, friends with a recent play first (by their latest play), then the
  others by id. A play is a ``stream`` or ``complete`` of the listening history
  (``ReplicaState.history``: one row per play id, at its latest time); a play whose time falls in one
  of the friend's private sessions is never shown. ``context`` is null (the history does not keep it).
- ``PUT`` / ``DELETE /v1/me/library?uris=`` and ``GET /v1/me/library/contains?uris=`` (Spotify's
  Feb-2026 library routes, which spotipy 2.26 calls to follow artists and users): ``spotify:artist|user|
  playlist:<id>`` uris follow / unfollow, ``spotify:track|album:<id>`` uris star / unstar (the same
  ``library.starred`` events as Subsonic's ``star``); 1 to 40 uris; an unknown item 404, nothing written.
- ``GET /v1/me/blends``: a page of the caller's Blends (playback/blends.py), simplified playlist
  objects; each reads in full at ``GET /v1/playlists/{id}``.

Ids are public ids (playback/ids.py): both a public alias and the internal id are accepted.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from core.timefmt import format_ts
from playback import blends, pii_reader, render
from playback.ids import internal_id
from playback.ids import public_id as pub
from playback.parsing import (
    INT_MAX,
    ApiError,
    base_url,
    bool_field,
    int_param,
    json_body,
    json_response,
    parse_uri,
    path_id,
    user_id,
    valid_id,
)
from playback.service import PlaybackApi, api_of
from processors import library as library_fold

routes = web.RouteTableDef()

MAX_IDS = 50
FEED_PLAYS = frozenset({"stream", "complete"})  # history kinds that are a play (a skip before 30 s is not)


def _type(request: web.Request, allowed: tuple[str, ...]) -> str:
    kind = request.query.get("type")
    if kind not in allowed:
        raise ApiError(400, f"Invalid type: expected {' or '.join(allowed)}, got {str(kind)[:20]!r}")
    return kind


def _query_ids(request: web.Request, max_ids: int = MAX_IDS) -> list[str]:
    raw = [i for i in request.query.get("ids", "").split(",") if i]
    return _checked_ids(raw, max_ids)


def _checked_ids(raw: Any, max_ids: int = MAX_IDS) -> list[str]:
    if not isinstance(raw, list) or not 0 < len(raw) <= max_ids:
        raise ApiError(400, f"Invalid ids: expected 1 to {max_ids} ids")
    return list(dict.fromkeys(valid_id(internal_id(i) if isinstance(i, str) else i) for i in raw))


async def _body_or_query_ids(request: web.Request) -> list[str]:
    if request.query.get("ids"):
        return _query_ids(request)
    body = await json_body(request, required=False)
    if not isinstance(body, dict) or "ids" not in body:
        raise ApiError(400, 'Missing ids: give ?ids=a,b or the body {"ids": [...]}')
    return _checked_ids(body["ids"])


def _check_targets(api: PlaybackApi, kind: str, ids: list[str], uid: str, *, unfollow: bool = False) -> None:
    """404 for an unknown artist or user (or an erased user), 400 for following yourself; what the caller
    follows can always be unfollowed."""
    followed = set(api.replica.follows(uid, kind)) if unfollow else set()
    for target in ids:
        if target in followed:
            continue
        if kind == "artist" and target not in api.replica.artists:
            raise ApiError(404, f"Artist not found: {pub(target)}", reason="ARTIST_NOT_FOUND")
        if kind == "user":
            doc = api.replica.users.get(target)
            if doc is None or target in api.replica.erased:
                raise ApiError(404, f"User not found: {target}", reason="USER_NOT_FOUND")
            if target == uid:
                raise ApiError(400, "You cannot follow yourself")


def _event(api: PlaybackApi, etype: str, uid: str, **fields: Any) -> dict:
    """A library event that supersedes the caller's previous write to the same entry: its ``occurred_at``
    is at least 1 ms after that entry's (two writes in one millisecond would otherwise be ordered by
    their random event ids)."""
    event = api.event(etype, user_id=uid, **fields)
    state = api.replica.library_state(uid) or {}
    if etype == library_fold.PRIVATE_SESSION:
        rows = state.get("private") or []
        last = rows[-1][0] if rows else None
    elif etype in library_fold.STAR_TYPES:
        entry = (state.get("items") or {}).get(library_fold.item_key(fields["item_type"], fields["item_id"]))
        last = entry["at"] if entry else None
    else:
        entry = (state.get("follows") or {}).get(library_fold.item_key(fields["target_type"], fields["target_id"]))
        last = entry["at"] if entry else None
    if last is not None and event["occurred_at"] <= last:
        event["occurred_at"] = last + 1
    return event


async def _follow(request: web.Request, etype: str) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    kind = _type(request, ("artist", "user"))
    ids = await _body_or_query_ids(request)
    _check_targets(api, kind, ids, uid, unfollow=etype == "library.unfollowed")
    extra = {"public": True} if etype == "library.followed" else {}
    await api.produce([_event(api, etype, uid, target_type=kind, target_id=t, **extra) for t in ids])
    return web.Response(status=204)


@routes.put("/v1/me/following")
async def follow(request: web.Request) -> web.Response:
    return await _follow(request, "library.followed")


@routes.delete("/v1/me/following")
async def unfollow(request: web.Request) -> web.Response:
    return await _follow(request, "library.unfollowed")


@routes.get("/v1/me/following", allow_head=False)
async def following(request: web.Request) -> web.Response:
    """Spotify's followed artists: a cursor page in artist-id order."""
    api = api_of(request)
    uid = user_id(request)
    _type(request, ("artist",))
    limit = int_param(request, "limit", 20, 1, 50)
    after = request.query.get("after")
    after_id = valid_id(internal_id(after), "after") if after else None
    base = base_url(request)
    with api.replica.lock:
        ids = sorted(a for a in api.replica.follows(uid, "artist") if a in api.replica.artists)
        rest = [a for a in ids if after_id is None or a > after_id]
        page = rest[:limit]
        items = [render.artist_object(api.replica, base, a) for a in page]
    href = f"{base}/v1/me/following?type=artist&limit={limit}"
    last = pub(page[-1]) if page else None
    more = len(rest) > limit
    return json_response({"artists": {
        "href": href + (f"&after={after}" if after else ""), "items": items, "limit": limit,
        "next": f"{href}&after={last}" if more else None, "total": len(ids),
        "cursors": {"after": last} if more else {}}})  # Spotify types the cursors strings: absent, not null


@routes.get("/v1/me/following/contains", allow_head=False)
async def following_contains(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    kind = _type(request, ("artist", "user"))
    ids = _query_ids(request)
    followed = set(api.replica.follows(uid, kind))
    return json_response([i in followed for i in ids])


def _real_playlist(api: PlaybackApi, request: web.Request) -> dict:
    pid = path_id(request)
    if blends.members(pid) is not None:
        raise ApiError(403, "A Blend cannot be followed: it is its two members' own playlist")
    state = api.replica.playlist_state(pid)
    if state is None:
        raise ApiError(404, f"Playlist not found: {pub(pid)}", reason="PLAYLIST_NOT_FOUND")
    return state


@routes.put("/v1/playlists/{id}/followers")
async def follow_playlist(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    state = _real_playlist(api, request)
    body = await json_body(request, required=False)
    if body is not None and not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object")
    public = bool_field(body or {}, "public", True)
    await api.produce([_event(api, "library.followed", uid, target_type="playlist",
                              target_id=state["playlist_id"], public=public)])
    return web.Response(status=200)


@routes.delete("/v1/playlists/{id}/followers")
async def unfollow_playlist(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    state = _real_playlist(api, request)
    await api.produce([_event(api, "library.unfollowed", uid, target_type="playlist",
                              target_id=state["playlist_id"])])
    return web.Response(status=200)


@routes.get("/v1/playlists/{id}/followers/contains", allow_head=False)
async def playlist_followers_contain(request: web.Request) -> web.Response:
    """Does each user follow the playlist? A non-public follow is told only to the follower."""
    api = api_of(request)
    uid = user_id(request)
    state = _real_playlist(api, request)
    ids = [i for i in request.query.get("ids", "").split(",") if i] or [uid]
    ids = _checked_ids(ids, 5)
    key = library_fold.item_key("playlist", state["playlist_id"])
    out = []
    for u in ids:
        entry = ((api.replica.library_state(u) or {}).get("follows") or {}).get(key)
        out.append(bool(entry and entry["following"] and (entry["public"] or u == uid)))
    return json_response(out)


@routes.put("/v1/me/player/private-session")
async def private_session(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    raw = request.query.get("state")
    if raw not in ("true", "false"):
        raise ApiError(400, f"Invalid state: expected true or false, got {str(raw)[:20]!r}")
    await api.produce([_event(api, library_fold.PRIVATE_SESSION, uid, enabled=raw == "true")])
    return web.Response(status=204)


def _plays(api: PlaybackApi, friend: str, limit: int) -> list[tuple[int, str]]:
    """(played_at, canonical track) of the friend's latest plays outside private sessions, newest first."""
    lib = api.replica.library_state(friend)
    latest: dict[str, tuple[int, str, bool]] = {}  # play id -> (latest time, track, private)
    for row in api.replica.history(friend):
        if row["kind"] not in FEED_PLAYS:
            continue
        play = row["event_id"].rsplit(":", 1)[0]
        at, track, private = latest.get(play, (row["at"], row["track_id"], False))
        latest[play] = (max(at, row["at"]), track, private or library_fold.private_at(lib, row["at"]))
    plays = sorted(((at, track) for at, track, private in latest.values() if not private),
                   key=lambda p: (-p[0], p[1]))
    return plays[:limit]


@routes.get("/v1/me/friends/activity", allow_head=False)
async def friends_activity(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    limit = int_param(request, "limit", 5, 1, 50)
    market = (api.replica.users.get(uid) or {}).get("country")
    base, now_ms = base_url(request), api.now_ms()
    friends: list[tuple[tuple[bool, int, str], dict]] = []
    with api.replica.lock:
        for friend in api.replica.follows(uid, "user"):
            if friend in api.replica.erased or friend not in api.replica.users:
                continue
            plays = _plays(api, friend, limit)
            doc = api.replica.users.get(friend) or {}
            friends.append(((not plays, -plays[0][0] if plays else 0, friend), {
                "user": {"id": friend, "type": "user", "uri": f"spotify:user:{friend}",
                         "href": f"{base}/v1/users/{friend}",
                         "display_name": pii_reader.read(friend, "display_name", doc.get("display_name"))},
                "latest_played_at": format_ts(plays[0][0]) if plays else None,
                "plays": [{"track": render.track_object(api.replica, base, t, market, now_ms),
                           "played_at": format_ts(at), "context": None} for at, t in plays],
            }))
    friends.sort(key=lambda kf: kf[0])
    return json_response({"friends": [f for _, f in friends]})


@routes.get("/v1/me/blends", allow_head=False)
async def my_blends(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    limit = int_param(request, "limit", 20, 1, 50)
    offset = int_param(request, "offset", 0, 0, INT_MAX)
    base, now_ms = base_url(request), api.now_ms()
    ids = blends.blends_of(api.replica, uid)
    items = []
    for pid in ids[offset:offset + limit]:
        state = blends.blend_state(api.replica, pid, uid, now_ms)
        if state is not None:
            obj = render.playlist_object(api.replica, base, state, now_ms)
            for key in ("tracks", "items"):
                obj[key] = {"href": obj[key]["href"], "total": obj[key]["total"]}
            items.append(obj)
    return json_response(render.page(f"{base}/v1/me/blends", items, offset, limit, len(ids)))


LIBRARY_KINDS = ("track", "album", "artist", "user", "playlist")
MAX_LIBRARY_URIS = 40


def _library_items(api: PlaybackApi, request: web.Request, uid: str, save: bool) -> list[tuple[str, str]]:
    """(kind, internal id) of every ``uris`` entry, checked to exist (404 naming the first unknown)."""
    raw = [u for u in request.query.get("uris", "").split(",") if u]
    if not 0 < len(raw) <= MAX_LIBRARY_URIS:
        raise ApiError(400, f"Invalid uris: expected 1 to {MAX_LIBRARY_URIS} comma-separated uris")
    out: list[tuple[str, str]] = []
    for uri in raw:
        kind, item = parse_uri(uri, LIBRARY_KINDS)
        if kind == "track":
            canon = api.replica.canonical_id(item)
            if canon is None or not (api.replica.tracks.get(canon) or {}).get("ingested"):
                raise ApiError(404, f"Track not found: {pub(item)}")
            item = canon
        elif kind == "album" and item not in api.replica.albums:
            raise ApiError(404, f"Album not found: {pub(item)}")
        elif kind == "playlist":
            if blends.members(item) is not None:
                raise ApiError(403, "A Blend cannot be followed: it is its two members' own playlist")
            if api.replica.playlist_state(item) is None:
                raise ApiError(404, f"Playlist not found: {pub(item)}", reason="PLAYLIST_NOT_FOUND")
        elif kind in ("artist", "user"):
            _check_targets(api, kind, [item], uid, unfollow=not save)
        out.append((kind, item))
    return list(dict.fromkeys(out))


async def _library_write(request: web.Request, save: bool) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    events = []
    for kind, item in _library_items(api, request, uid, save):
        if kind in ("track", "album"):
            events.append(_event(api, "library.starred" if save else "library.unstarred", uid,
                                 item_type=kind, item_id=item))
        elif save:
            events.append(_event(api, "library.followed", uid, target_type=kind, target_id=item, public=True))
        else:
            events.append(_event(api, "library.unfollowed", uid, target_type=kind, target_id=item))
    await api.produce(events)
    return web.Response(status=200)


@routes.put("/v1/me/library")
async def save_to_library(request: web.Request) -> web.Response:
    return await _library_write(request, True)


@routes.delete("/v1/me/library")
async def remove_from_library(request: web.Request) -> web.Response:
    return await _library_write(request, False)


@routes.get("/v1/me/library/contains", allow_head=False)
async def library_contains(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    raw = [u for u in request.query.get("uris", "").split(",") if u]
    if not 0 < len(raw) <= MAX_LIBRARY_URIS:
        raise ApiError(400, f"Invalid uris: expected 1 to {MAX_LIBRARY_URIS} comma-separated uris")
    state = api.replica.library_state(uid)
    out = []
    for uri in raw:
        kind, item = parse_uri(uri, LIBRARY_KINDS)
        if kind in ("track", "album"):
            item = (api.replica.canonical_id(item) or item) if kind == "track" else item
            out.append(library_fold.starred_at(state, kind, item) is not None)
        else:
            out.append(library_fold.follows(state, kind, item))
    return json_response(out)
