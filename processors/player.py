"""Player state (the logical Spotify-Connect-like player) from ``player.*`` events.

Key: ``user_id``. The player topic's per-partition order is the order of the user's commands; event
time (``occurred_at``) only stamps positions so progress can be derived later without a clock.

State, plain JSON-able data::

    {"user_id": str,
     "active_device": str | None,
     "context_uri": str | None,
     "tracks": [track_id, ...],   # the list play_requested started (the context's items)
     "index": int,                # position in "tracks" of the current (or last) context item
     "queue": [track_id, ...],    # user-queued items, played before the context continues
     "from_queue": bool,          # the current item came from the queue
     "item": str | None,          # current track id
     "playing": bool,
     "position_ms": int, "since": int | None,   # position at event time "since"
     "volumes": {device_id: int},
     "shuffle": bool,             # player.shuffle_set
     "order": [int, ...] | None,  # with shuffle: the play order, indices into "tracks"
     "pos": int,                  # with shuffle: position in "order" of the current context item
     "repeat": "off" | "track" | "context",   # player.repeat_set
     "seen": [event_id, ...]}     # recent event ids (dedupe window)

States written before shuffle/repeat existed lack the last four keys: they read as shuffle off,
repeat off.

Semantics (Spotify Web API where it defines one):

* ``play_requested``: the device becomes active; tracks/context replaced; item = tracks[offset];
  position_ms at occurred_at; playing. The user queue is kept. Empty ``track_ids`` or
  ``offset >= len(track_ids)`` -> dead-letter.
* ``paused``: playing false, position = position_ms (the client's). ``resumed``: playing from the
  stored position, since = occurred_at. ``seeked``: position = position_ms, since = occurred_at.
  All three need an item (else dead-letter).
* ``skipped_to next``: the first queued item if any, else the next context item; nothing left ->
  dead-letter, state unchanged. ``previous``: from a queued item, back to the context item it
  interrupted; else the previous context item; at the first item, restart it. Position 0;
  playing flag unchanged.
* ``queued``: appended to the queue. ``volume_set``: per device.
* ``shuffle_set``: ``shuffle = true`` keeps the current context item current and plays the other items
  of the context in a deterministic permutation, :func:`shuffled_order`, seeded by the shuffle
  event's ``event_id`` (a Fisher-Yates shuffle whose draws are SHA-256 of ``<event_id>:<i>``: no
  clock, no process-dependent RNG, so the worker, the API's overlay and a replay agree).
  ``play_requested`` while shuffle is on shuffles the new context the same way, seeded by the play
  event's id (the offset item first). ``shuffle = false`` returns to context order: next plays the
  item that follows the current one in the context. Setting the shuffle it already has changes
  nothing (the order is kept).
* ``repeat_set``: ``track``: next restarts the current item (the queue waits); ``context``: next at
  the end of the context wraps to its first item (of the shuffled order when shuffled), previous at
  its first item wraps to the last; ``off``: next at the end is refused (dead-letter), previous at
  the first item restarts it.
* ``transferred``: the device becomes active; ``play = true`` starts playback (since = occurred_at),
  ``play = false`` keeps the current playing/paused state (Spotify's "keep the current state").

Progress: :func:`progress_ms` = position + (now - since) while playing, capped at the duration if known.

Idempotency: the fold is order-dependent (partition order), so it remembers the last
``DEDUPE_WINDOW`` event ids it applied or rejected; a redelivered event inside that window (at-least-once
redelivery replays only what followed the last commit) changes nothing and produces no output.

Outputs: ``{"kind": "view", "key": user_id, "view": to_view(state)}`` on change;
``{"kind": "dead_letter", "reason", "event"}`` with the state unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

State = dict[str, Any]
Outputs = list[dict[str, Any]]
DEDUPE_WINDOW = 512
PLAYER_TYPES = frozenset(
    {
        "player.play_requested",
        "player.paused",
        "player.resumed",
        "player.seeked",
        "player.skipped_to",
        "player.queued",
        "player.transferred",
        "player.volume_set",
        "player.shuffle_set",
        "player.repeat_set",
    }
)
REPEAT_STATES = ("off", "track", "context")


def new_state(user_id: str) -> State:
    return {
        "user_id": user_id,
        "active_device": None,
        "context_uri": None,
        "tracks": [],
        "index": 0,
        "queue": [],
        "from_queue": False,
        "item": None,
        "playing": False,
        "position_ms": 0,
        "since": None,
        "volumes": {},
        "shuffle": False,
        "order": None,
        "pos": 0,
        "repeat": "off",
        "seen": [],
    }


def shuffled_order(n: int, first: int, seed: str) -> list[int]:
    """A play order over ``n`` context items: ``first``, then the other indices in a permutation
    drawn by Fisher-Yates with ``j = SHA-256("<seed>:<i>") mod (i + 1)`` (pure and deterministic)."""
    rest = [i for i in range(n) if i != first]
    for i in range(len(rest) - 1, 0, -1):
        digest = hashlib.sha256(f"{seed}:{i}".encode()).digest()
        j = int.from_bytes(digest[:8], "big") % (i + 1)
        rest[i], rest[j] = rest[j], rest[i]
    return [first, *rest] if 0 <= first < n else rest


def _order(state: Mapping[str, Any]) -> list[int] | None:
    """The shuffled play order when shuffle is on and there is a context, else None."""
    order = state.get("order")
    return order if state.get("shuffle") and order else None


def evolve(
    state: State | None, event: Mapping[str, Any], *, window: int = DEDUPE_WINDOW
) -> tuple[State, Outputs]:
    """Fold one player event into the player of its ``user_id``. The input state is not mutated."""
    etype = event.get("type")
    user_id = event.get("user_id")
    if state is None:
        state = new_state(user_id)  # type: ignore[arg-type]
    eid = event.get("event_id")
    if eid in state["seen"]:
        return state, []
    seen = [*state["seen"], eid][-window:]
    if etype not in PLAYER_TYPES:
        return {**state, "seen": seen}, [_dead(event, f"the player fold does not take {etype!r} events")]
    if state["user_id"] != user_id:
        return state, [_dead(event, f"event for {user_id!r} reached the player of {state['user_id']!r}")]
    new, reason = _apply(state, event)
    if reason is not None:
        return {**state, "seen": seen}, [_dead(event, reason)]
    new["seen"] = seen
    return new, [{"kind": "view", "key": user_id, "view": to_view(new)}]


def _dead(event: Mapping[str, Any], reason: str) -> dict[str, Any]:
    return {"kind": "dead_letter", "reason": reason, "event": dict(event)}


def _apply(state: State, event: Mapping[str, Any]) -> tuple[State, str | None]:
    etype = event["type"]
    at = event["occurred_at"]
    new = dict(state)
    if etype == "player.play_requested":
        tracks = list(event["track_ids"])
        offset = event["offset"]
        if not tracks:
            return state, "play_requested has no track_ids"
        if not 0 <= offset < len(tracks):
            return state, f"offset {offset} is outside the {len(tracks)} requested tracks"
        new.update(
            active_device=event["device_id"],
            context_uri=event["context_uri"],
            tracks=tracks,
            index=offset,
            from_queue=False,
            item=tracks[offset],
            playing=True,
            position_ms=event["position_ms"],
            since=at,
        )
        if state.get("shuffle"):
            new.update(order=shuffled_order(len(tracks), offset, event["event_id"]), pos=0)
        else:
            new.update(order=None, pos=0)
    elif etype in ("player.paused", "player.resumed", "player.seeked"):
        if state["item"] is None:
            return state, f"{etype} with nothing to play"
        if etype == "player.paused":
            new.update(playing=False, position_ms=event["position_ms"], since=at)
        elif etype == "player.resumed":
            new.update(playing=True, since=at)
        else:
            new.update(position_ms=event["position_ms"], since=at)
    elif etype == "player.skipped_to":
        if state["item"] is None:
            return state, "skipped_to with nothing to play"
        reason = _skip(state, new, event["direction"])
        if reason is not None:
            return state, reason
        new.update(position_ms=0, since=at)
    elif etype == "player.queued":
        new["queue"] = [*state["queue"], event["track_id"]]
    elif etype == "player.transferred":
        new["active_device"] = event["device_id"]
        if event["play"]:
            if state["item"] is None:
                return state, "transferred with play=true but nothing to play"
            if not state["playing"]:
                new.update(playing=True, since=at)
    elif etype == "player.volume_set":
        new["volumes"] = {**state["volumes"], event["device_id"]: event["volume_percent"]}
    elif etype == "player.shuffle_set":
        on = event["shuffle"]
        if on != bool(state.get("shuffle")):
            order = None
            if on and state["tracks"]:
                order = shuffled_order(len(state["tracks"]), state["index"], event["event_id"])
            new.update(shuffle=on, order=order, pos=0)
    elif etype == "player.repeat_set":
        if event["repeat"] not in REPEAT_STATES:
            return state, f"repeat state {event['repeat']!r} is not one of {', '.join(REPEAT_STATES)}"
        new["repeat"] = event["repeat"]
    return new, None


def _skip(state: State, new: State, direction: str) -> str | None:
    """Move ``new`` to the next / previous item (see the module docstring); a reason when refused."""
    tracks, repeat, order = state["tracks"], state.get("repeat", "off"), _order(state)
    # the context as played: positions 0..n-1 of the order (shuffled) or of the tracks themselves
    n = len(order) if order else len(tracks)
    at = state.get("pos", 0) if order else state["index"]

    def goto(p: int) -> None:
        index = order[p] if order else p
        new.update(index=index, item=tracks[index], from_queue=False, pos=p if order else state.get("pos", 0))

    if direction == "next":
        if repeat == "track":
            return None  # the same item again, from the start
        if state["queue"]:
            new.update(item=state["queue"][0], queue=state["queue"][1:], from_queue=True)
        elif at + 1 < n:
            goto(at + 1)
        elif repeat == "context" and n:
            goto(0)
        else:
            return "skipped_to next with no next track in the queue or context"
        return None
    if not tracks:
        new["from_queue"] = False
        return None  # nothing but the current item: restart it
    if state["from_queue"]:
        goto(at)
    elif at > 0:
        goto(at - 1)
    elif repeat == "context":
        goto(n - 1)
    else:
        goto(0)
    return None


def progress_ms(state: Mapping[str, Any], now_ms: int, duration_ms: int | None = None) -> int:
    """Playback position at ``now_ms``: position + (now - since) while playing (never negative
    elapsed time), capped at ``duration_ms`` when known. Takes a state or a :func:`to_view` document."""
    position = state["position_ms"]
    playing = state["playing"] if "playing" in state else state["is_playing"]
    if playing and state["since"] is not None:
        position += max(0, now_ms - state["since"])
    if duration_ms is not None:
        position = min(position, duration_ms)
    return position


def upcoming(state: Mapping[str, Any]) -> list[str]:
    """What plays next: the user queue, then the rest of the context (in the shuffled order when
    shuffle is on). Repeat does not extend the list."""
    order = _order(state)
    if order:
        return [*state["queue"], *(state["tracks"][i] for i in order[state.get("pos", 0) + 1 :])]
    return [*state["queue"], *state["tracks"][state["index"] + 1 :]]


def to_view(state: Mapping[str, Any]) -> dict[str, Any]:
    """The player document: ``{"user_id", "device_id", "item", "context_uri", "is_playing",
    "position_ms", "since", "queue_position", "queue": [...upcoming], "volumes", "shuffle_state",
    "repeat_state"}``.
    The API derives ``progress_ms`` with :func:`progress_ms` at request time."""
    return {
        "user_id": state["user_id"],
        "device_id": state["active_device"],
        "item": state["item"],
        "context_uri": state["context_uri"],
        "is_playing": state["playing"],
        "position_ms": state["position_ms"],
        "since": state["since"],
        "queue_position": state["index"],
        "queue": upcoming(state),
        "volumes": dict(state["volumes"]),
        "shuffle_state": bool(state.get("shuffle")),
        "repeat_state": state.get("repeat", "off"),
    }
