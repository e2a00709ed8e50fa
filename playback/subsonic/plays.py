"""Plays of the Subsonic API: ``stream`` starts one, ``scrobble`` reports on it, under the trust rules of
``POST /v1/events`` (README "Trust model", playback/routes/events.py).

A Subsonic client never sees a play id, so the server keeps the tie itself, through the log:

- a play is **started by the server** when it hands out the audio: a ``stream`` request from the first
  byte (no ``Range``, or one from byte 0), or ``scrobble`` with ``submission=false`` ("now playing",
  rights checked as for ``stream``). It issues a play grant (playback/grants.py: bound to the user, the
  canonical track and the issue time) and records ``play.started`` with it as ``play_id``, device
  ``subsonic-<client>``. While the user's latest play of that track is still open (not completed) and
  younger than the track (at least :data:`MIN_REUSE_MS`), it is reused: a player's retries and
  re-reads from byte 0 are one play;
- every API process follows the listening topic, so any of them finds the user's latest play of a
  track (:meth:`playback.replica_state.ReplicaState.recent_play`), whichever process started it;
- ``scrobble`` with ``submission=true`` records ``play.completed`` for that play: ``ms_played`` is the
  track's duration, capped by the time since the grant was issued (the server's own clock: a client
  cannot claim more listening than the time it has had the audio); ``occurred_at`` is the scrobble's
  ``time`` (when the song was listened to) or now. Scrobbling a play already completed changes nothing
  (a client's retry); a track with no play the server started is refused (code 50).

Each event goes through ``playback.routes.events.client_event``, the very check ``POST /v1/events``
applies (the user's country and product from the users view, the grant's signature, user and track,
``received_at`` stamped, issued - 5 min <= occurred_at <= received_at + 5 min, at most 30 days after the
grant), so the live view and every replay judge a Subsonic play exactly like any client play.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from core.timefmt import format_ts
from playback.grants import trust_of
from playback.routes.events import DECIDED, client_event
from playback.subsonic.context import Ctx, method
from playback.subsonic.library import device_id
from playback.subsonic.render import Code, SubsonicError
from processors.rules import CLIENT_SKEW_MS
from schemas.codec import EventError

log = logging.getLogger(__name__)

MIN_REUSE_MS = 60_000
MAX_TIME_MS = 10**15 - 1


def _event_id(play_id: str, kind: str) -> str:
    """Deterministic per (play, kind): a repeated scrobble is the same event (deduplicated everywhere)."""
    return "ss-" + hashlib.sha256(f"{play_id}\n{kind}".encode()).hexdigest()[:32]


def _record(ctx: Ctx, obj: dict[str, Any], user: dict) -> dict | None:
    """The checked event of a client object (the trust path of ``POST /v1/events``); None when this API
    process already recorded that event id; SubsonicError (code 0) with the reason when refused."""
    api = ctx.api
    trust = trust_of(api)
    profile = {f: user[f] for f in DECIDED}
    try:
        event = client_event(api, trust, obj, ctx.user_id, profile, api.now_ms())
    except EventError as exc:
        raise SubsonicError(Code.GENERIC, f"play refused: {exc}") from None
    if not trust.seen.add(event["event_id"]):
        return None
    return event


async def _produce(ctx: Ctx, events: list[dict]) -> None:
    trust = trust_of(ctx.api)
    try:
        await ctx.api.produce(events)
    except Exception:  # not recorded: the client may send them again
        for e in events:
            trust.seen.discard(e["event_id"])
        raise


def playable(ctx: Ctx, track_id: str) -> tuple[str, dict, dict]:
    """(canonical id, user document, track document) of a track the caller may play now; code 70 for an
    unknown track, 50 for an unregistered user or a track not playable in the user's country."""
    canon = ctx.canonical_track(track_id)
    user = ctx.profile()
    ok, reason = ctx.replica.playability(canon, user["country"], ctx.api.now_ms())
    if not ok:
        raise SubsonicError(Code.NOT_AUTHORIZED, f"Cannot play {canon}: {reason}")
    return canon, user, ctx.replica.track_doc(canon) or {}


async def start_play(ctx: Ctx, canon: str, user: dict, doc: dict) -> str:
    """The play id of the user's open play of the track, started now when there is none (module doc)."""
    now = ctx.api.now_ms()
    duration = doc.get("duration_ms") if isinstance(doc.get("duration_ms"), int) else 0
    play = ctx.replica.recent_play(ctx.user_id, canon)
    if play is not None and not play["completed"] and now - play["issued_ms"] < max(MIN_REUSE_MS, duration):
        return play["play_id"]
    grant = trust_of(ctx.api).grants.issue(ctx.user_id, canon, now)
    obj = {"type": "play.started", "event_id": _event_id(grant, "started"), "occurred_at": format_ts(now),
           "play_id": grant, "user_id": ctx.user_id, "track_id": canon, "device_id": device_id(ctx.client),
           "context_uri": None, "offline": False}
    event = _record(ctx, obj, user)
    if event is not None:
        await _produce(ctx, [event])
    return grant


async def complete_play(ctx: Ctx, canon: str, user: dict, doc: dict, at_ms: int | None) -> None:
    play = ctx.replica.recent_play(ctx.user_id, canon)
    now = ctx.api.now_ms()
    if play is None or play["issued_ms"] > (at_ms if at_ms is not None else now) + CLIENT_SKEW_MS:
        raise SubsonicError(Code.NOT_AUTHORIZED, f"No play of {canon} was started for you: stream it (or send "
                                                 "a now-playing scrobble) first")
    if play["completed"]:
        return  # reported already: a retry
    duration = doc.get("duration_ms") if isinstance(doc.get("duration_ms"), int) else 0
    ms_played = max(0, min(duration, now - play["issued_ms"]))
    obj = {"type": "play.completed", "event_id": _event_id(play["play_id"], "completed"),
           "occurred_at": format_ts(at_ms if at_ms is not None else now), "play_id": play["play_id"],
           "user_id": ctx.user_id, "track_id": canon, "ms_played": ms_played}
    event = _record(ctx, obj, user)
    if event is not None:
        await _produce(ctx, [event])


@method("scrobble")
async def scrobble(ctx: Ctx) -> dict[str, Any]:
    ids = ctx.params.all("id")
    if not ids:
        raise SubsonicError(Code.MISSING_PARAMETER, "Required parameter 'id' is missing")
    times = ctx.params.ints("time", 0, MAX_TIME_MS)
    if times and len(times) != len(ids):
        raise SubsonicError(Code.GENERIC, "Invalid value for parameter time: one per id")
    submission = ctx.params.bool("submission", True)
    for i, track_id in enumerate(ids):
        if submission:  # reports on a play already started (its rights were checked then)
            canon = ctx.canonical_track(track_id)
            await complete_play(ctx, canon, ctx.profile(), ctx.replica.track_doc(canon) or {},
                                times[i] if times else None)
        else:  # now playing: a play starts, as for a stream
            await start_play(ctx, *playable(ctx, track_id))
    return {}
