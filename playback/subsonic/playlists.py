"""Playlists: ``getPlaylists``, ``getPlaylist``, ``createPlaylist``, ``updatePlaylist``, ``deletePlaylist``.

The same playlists as ``/v1`` (the ``playlist.*`` events, ``view.playlists``), with the same rules
(processors/playlists.py): every edit is folded first and one the fold refuses is answered with code
50 (not the owner, or not a collaborator) or 0 (invalid), and never produced.

- ``getPlaylists``: the caller's own playlists (``username`` another user's: code 50).
- ``getPlaylist``: any playlist by id (readable by anyone with the id, as on ``/v1``); unknown or
  deleted: code 70.
- ``createPlaylist``: with ``name``, a new private playlist of the caller (``playlist.created``) with
  the ``songId``s (``playlist.tracks_added``); with ``playlistId``, the playlist's songs replaced by the
  ``songId``s (``tracks_removed`` of what is there, ``tracks_added`` of the new list). Answers the
  playlist (since Subsonic 1.14).
- ``updatePlaylist``: ``name`` / ``public`` (``playlist.details_changed``, owner only), ``comment``
  accepted but not kept (no event carries one), ``songIndexToRemove`` (positions in the current
  playlist; a replace as above), ``songIdToAdd`` (appended).
- ``deletePlaylist``: ``playlist.deleted`` (owner only).
"""

from __future__ import annotations

from typing import Any

from playback.parsing import new_id
from playback.subsonic.context import Ctx, method
from playback.subsonic.render import Code, SubsonicError
from processors import playlists as playlists_fold

MAX_NAME_CHARS = 300


def _state(ctx: Ctx, playlist_id: str) -> dict:
    state = ctx.replica.playlist_state(playlist_id)
    if state is None:
        raise SubsonicError(Code.NOT_FOUND, f"Playlist not found: {playlist_id[:80]}")
    return state


def _check(state: dict | None, events: list[dict]) -> None:
    """Fold the edits in order; the first one the fold refuses -> code 50 (permission) or 0."""
    for event in events:
        state, outputs = playlists_fold.evolve(state, event)
        for out in outputs:
            if out.get("kind") == "dead_letter":
                reason = out["reason"]
                code = Code.NOT_AUTHORIZED if "may not edit" in reason or "not the owner" in reason else Code.GENERIC
                raise SubsonicError(code, reason)


def _replace(ctx: Ctx, pid: str, current: list[str], new: list[str]) -> list[dict]:
    events = []
    if current:
        events.append(ctx.api.event("playlist.tracks_removed", playlist_id=pid, user_id=ctx.user_id,
                                    track_ids=list(dict.fromkeys(current))))
    if new:
        events.append(ctx.api.event("playlist.tracks_added", playlist_id=pid, user_id=ctx.user_id,
                                    track_ids=new, position=None))
    return events


def _name(raw: str) -> str:
    name = raw.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise SubsonicError(Code.GENERIC, f"Invalid value for parameter name: 1 to {MAX_NAME_CHARS} characters")
    return name


def _answer(ctx: Ctx, pid: str) -> dict[str, Any]:
    state = _state(ctx, pid)
    with ctx.replica.lock:
        return {"playlist": ctx.objects().playlist(state)}


@method("getPlaylists")
async def get_playlists(ctx: Ctx) -> dict[str, Any]:
    username = ctx.params.str("username") or ctx.user_id
    if username != ctx.user_id:
        raise SubsonicError(Code.NOT_AUTHORIZED, "Only your own playlists can be listed")
    replica = ctx.replica
    with replica.lock:
        objects = ctx.objects()
        states = [s for s in (replica.playlist_state(p) for p in replica.playlists_of(ctx.user_id)) if s]
        out = [objects.playlist(s, with_songs=False) for s in states]
    return {"playlists": {"playlist": out}}


@method("getPlaylist")
async def get_playlist(ctx: Ctx) -> dict[str, Any]:
    return _answer(ctx, ctx.params.required("id"))


@method("createPlaylist")
async def create_playlist(ctx: Ctx) -> dict[str, Any]:
    songs = [ctx.canonical_track(t) for t in ctx.params.all("songId")]
    pid = ctx.params.str("playlistId")
    if pid:
        state = _state(ctx, pid)
        events = _replace(ctx, pid, playlists_fold.track_ids(state), songs)
    else:
        name = ctx.params.str("name")
        if name is None:
            raise SubsonicError(Code.MISSING_PARAMETER, "Required parameter 'name' (or 'playlistId') is missing")
        state, pid = None, new_id()
        events = [ctx.api.event("playlist.created", playlist_id=pid, owner_id=ctx.user_id, name=_name(name),
                                collaborative=False, public=False)]
        if songs:
            events.append(ctx.api.event("playlist.tracks_added", playlist_id=pid, user_id=ctx.user_id,
                                        track_ids=songs, position=None))
    _check(state, events)
    if events:
        await ctx.api.produce(events)
    return _answer(ctx, pid)


@method("updatePlaylist")
async def update_playlist(ctx: Ctx) -> dict[str, Any]:
    pid = ctx.params.required("playlistId")
    state = _state(ctx, pid)
    events = []
    name = ctx.params.str("name")
    public = ctx.params.bool("public", state["public"]) if "public" in ctx.params else None
    if name is not None or public is not None:
        events.append(ctx.api.event("playlist.details_changed", playlist_id=pid, user_id=ctx.user_id,
                                    name=_name(name) if name is not None else None, collaborative=None,
                                    public=public))
    current = playlists_fold.track_ids(state)
    remove = ctx.params.ints("songIndexToRemove", 0, max(0, len(current) - 1))
    if remove and not current:
        raise SubsonicError(Code.GENERIC, "Invalid value for parameter songIndexToRemove: the playlist is empty")
    add = [ctx.canonical_track(t) for t in ctx.params.all("songIdToAdd")]
    if remove:
        gone = set(remove)
        events += _replace(ctx, pid, current, [t for i, t in enumerate(current) if i not in gone] + add)
    elif add:
        events.append(ctx.api.event("playlist.tracks_added", playlist_id=pid, user_id=ctx.user_id,
                                    track_ids=add, position=None))
    _check(state, events)
    if events:
        await ctx.api.produce(events)
    return {}


@method("deletePlaylist")
async def delete_playlist(ctx: Ctx) -> dict[str, Any]:
    pid = ctx.params.required("id")
    state = _state(ctx, pid)
    event = ctx.api.event("playlist.deleted", playlist_id=pid, user_id=ctx.user_id)
    _check(state, [event])
    await ctx.api.produce([event])
    return {}
