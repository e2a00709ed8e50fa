"""The caller's library: ``star``, ``unstar``, ``getStarred2``, ``getPlayQueue``, ``savePlayQueue``.

Every write is an event (read back at once through the replica's read-your-writes overlay):

- ``star`` / ``unstar``: one ``library.starred`` / ``library.unstarred`` per item (user_id, item_type,
  item_id), folded by the worker into ``view.library`` (processors/library.py). ``id`` names a song
  (its canonical id is recorded), or else an album, or else an artist (the folder form); ``albumId``
  and ``artistId`` name albums and artists. An id the catalog does not know: code 70, nothing written.
- ``savePlayQueue``: the play queue *is* the player (the Spotify-Connect-like state every client of
  this server shares), so it becomes ``player.play_requested`` (the queue as ``track_ids``, ``offset``
  the index of ``current``, ``position_ms`` = ``position``) on the device ``subsonic-<client>``, then
  ``player.paused`` at that position: saving a queue does not start playback anywhere. Without any
  ``id`` it is accepted and changes nothing (the player fold has no "clear").
- ``getPlayQueue``: the player state: the context list with the user queue after the current item,
  ``current`` the current item, ``position`` its progress, ``changed`` the last command's time and
  ``changedBy`` the device that gave it.
"""

from __future__ import annotations

import re
from typing import Any

from core.timefmt import format_ts
from playback.parsing import INT_MAX
from playback.subsonic.context import Ctx, method
from playback.subsonic.objects import EPOCH
from playback.subsonic.render import Code, SubsonicError
from processors import library as library_fold
from processors import player as player_fold

_DEVICE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def device_id(client: str) -> str:
    """The player device of a Subsonic client: ``subsonic-<c>`` (its name reduced to id characters)."""
    name = _DEVICE_CHARS.sub("-", client.strip())[:64].strip("-")
    return f"subsonic-{name or 'client'}"


def _items(ctx: Ctx) -> list[tuple[str, str]]:
    """(item_type, item_id) of every ``id``, ``albumId`` and ``artistId``; code 70 for an unknown one."""
    replica = ctx.replica
    out: list[tuple[str, str]] = []
    with replica.lock:
        for raw in ctx.params.all("id"):
            canon = replica.canonical_id(raw)
            if canon is not None and (replica.tracks.get(canon) or {}).get("ingested"):
                out.append(("track", canon))
            elif raw in replica.albums:
                out.append(("album", raw))
            elif raw in replica.artists:
                out.append(("artist", raw))
            else:
                raise SubsonicError(Code.NOT_FOUND, f"Not found: {raw[:80]}")
        for name, kind, table in (("albumId", "album", replica.albums), ("artistId", "artist", replica.artists)):
            for raw in ctx.params.all(name):
                if raw not in table:
                    raise SubsonicError(Code.NOT_FOUND, f"{kind.capitalize()} not found: {raw[:80]}")
                out.append((kind, raw))
    if not out:
        raise SubsonicError(Code.MISSING_PARAMETER, "Required parameter 'id', 'albumId' or 'artistId' is missing")
    return list(dict.fromkeys(out))


async def _library_write(ctx: Ctx, etype: str) -> dict[str, Any]:
    events = [ctx.api.event(etype, user_id=ctx.user_id, item_type=kind, item_id=item_id)
              for kind, item_id in _items(ctx)]
    await ctx.api.produce(events)
    return {}


@method("star")
async def star(ctx: Ctx) -> dict[str, Any]:
    return await _library_write(ctx, "library.starred")


@method("unstar")
async def unstar(ctx: Ctx) -> dict[str, Any]:
    return await _library_write(ctx, "library.unstarred")


@method("getStarred2")
async def get_starred2(ctx: Ctx) -> dict[str, Any]:
    replica = ctx.replica
    with replica.lock:
        objects = ctx.objects()
        state = objects.library
        songs = objects.songs([i for _, i, _ in library_fold.starred(state, "track")])
        albums = [a for a in (objects.album(i) for _, i, _ in library_fold.starred(state, "album")) if a]
        artists = [a for a in (objects.artist(i) for _, i, _ in library_fold.starred(state, "artist")) if a]
    return {"starred2": {"artist": artists, "album": albums, "song": songs}}


@method("savePlayQueue")
async def save_play_queue(ctx: Ctx) -> dict[str, Any]:
    ids = ctx.params.all("id")
    position = ctx.params.int("position", 0, 0, INT_MAX)
    if not ids:
        return {}
    tracks = [ctx.canonical_track(t) for t in ids]
    current = ctx.params.str("current")
    offset = 0
    if current:
        canon = ctx.canonical_track(current)
        if canon not in tracks:
            raise SubsonicError(Code.GENERIC, "Invalid value for parameter current: not one of the queue's ids")
        offset = tracks.index(canon)
    device = device_id(ctx.client)
    play = ctx.api.event("player.play_requested", user_id=ctx.user_id, device_id=device, track_ids=tracks,
                         context_uri=None, offset=offset, position_ms=position)
    pause = ctx.api.event("player.paused", user_id=ctx.user_id, device_id=device, position_ms=position)
    state, outputs = player_fold.evolve(ctx.replica.player_state(ctx.user_id), play)
    _, more = player_fold.evolve(state, pause)
    refused = [o["reason"] for o in outputs + more if o.get("kind") == "dead_letter"]
    if refused:
        raise SubsonicError(Code.GENERIC, refused[0])
    await ctx.api.produce([play, pause])
    return {}


def queue_entries(state: dict) -> list[str]:
    """The play queue of a player state: the context up to the current item, the user queue, the rest."""
    index = state["index"]
    tracks = state["tracks"]
    current = [state["item"]] if state["from_queue"] else []
    return [*tracks[: index + 1], *current, *state["queue"], *tracks[index + 1 :]]


@method("getPlayQueue")
async def get_play_queue(ctx: Ctx) -> dict[str, Any]:
    replica = ctx.replica
    state = replica.player_state(ctx.user_id)
    if not state or state.get("item") is None:
        return {"playQueue": {"username": ctx.user_id, "changed": EPOCH, "changedBy": ""}}
    with replica.lock:
        objects = ctx.objects()
        entries = objects.songs(queue_entries(state))
        doc = replica.track_doc(state["item"]) or {}
        duration = doc.get("duration_ms")
        position = player_fold.progress_ms(state, ctx.api.now_ms(), duration if isinstance(duration, int) else None)
    return {"playQueue": {"username": ctx.user_id, "current": replica.canonical_id(state["item"]) or state["item"],
                          "position": position,
                          "changed": format_ts(state["since"]) if state.get("since") is not None else EPOCH,
                          "changedBy": state.get("active_device") or "", "entry": entries}}
