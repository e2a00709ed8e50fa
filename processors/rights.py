"""Rights view: rights.changed history and takedowns per upload, judged by event time.

Keying: the rights topic is keyed by ``track_id``; so is ``track.taken_down`` on the catalog topic. The
fold keeps one state per *upload id as it appears in the event* (key ``track_id``), so a late
``track.ingested`` that changes which upload is canonical never forces a re-key. A question about a
logical track is asked with all of its upload ids (``CatalogIndex.members(canon)``): royalties.md says an
alias id in a rights event maps to the canonical id, and this view applies the same to takedowns.

State (key ``track_id``), plain JSON-able data::

    {"track_id": str,
     "rights": {territory: [[occurred_at, event_id, allowed, valid_from|None, valid_to|None], ...]},
     "takedowns": [[occurred_at, event_id, [territories], reason], ...]}

Both lists are kept sorted by (occurred_at, event_id) and hold each event_id once, so duplicates are
no-ops and any arrival order gives the same state. The whole history is kept: late plays and late
rights events are judged against it exactly (royalties.md rules 3 and 4).

Outputs: ``{"kind": "view", "key": track_id, "view": state}`` when the state changed (the state is its
own view), ``{"kind": "dead_letter", "reason", "event"}`` for events this fold does not take.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from typing import Any

from processors import rules

State = dict[str, Any]
Outputs = list[dict[str, Any]]
RIGHTS_TYPES = frozenset({"rights.changed", "track.taken_down"})


def new_state(track_id: str) -> State:
    return {"track_id": track_id, "rights": {}, "takedowns": []}


def evolve(state: State | None, event: Mapping[str, Any]) -> tuple[State, Outputs]:
    """Fold a ``rights.changed`` or ``track.taken_down`` into the state of its ``track_id``."""
    etype = event.get("type")
    track_id = event.get("track_id")
    if state is None:
        state = new_state(track_id)  # type: ignore[arg-type]
    if etype not in RIGHTS_TYPES:
        return state, [_dead(event, f"the rights fold does not take {etype!r} events")]
    if state["track_id"] != track_id:
        return state, [
            _dead(event, f"event for {track_id!r} reached the rights state of {state['track_id']!r}")
        ]
    at, eid = event["occurred_at"], event["event_id"]
    if etype == "rights.changed":
        territory = event["territory"]
        history = state["rights"].get(territory, [])
        if any(entry[1] == eid for entry in history):
            return state, []
        entry = [at, eid, bool(event["allowed"]), event["valid_from"], event["valid_to"]]
        new_history = list(history)
        bisect.insort(new_history, entry, key=lambda e: (e[0], e[1]))
        new = {**state, "rights": {**state["rights"], territory: new_history}}
    else:
        if any(entry[1] == eid for entry in state["takedowns"]):
            return state, []
        entry = [at, eid, sorted(event["territories"]), event["reason"]]
        new_takedowns = list(state["takedowns"])
        bisect.insort(new_takedowns, entry, key=lambda e: (e[0], e[1]))
        new = {**state, "takedowns": new_takedowns}
    return new, [{"kind": "view", "key": track_id, "view": new}]


def _dead(event: Mapping[str, Any], reason: str) -> dict[str, Any]:
    return {"kind": "dead_letter", "reason": reason, "event": dict(event)}


def to_view(state: State) -> State:
    """The state is already the JSON-able view (the API replica needs the history to answer by time)."""
    return state


# --------------------------------------------------------------------------------------------------
# questions


def _states(view: Mapping[str, State], track_ids: str | Iterable[str]) -> list[State]:
    ids = [track_ids] if isinstance(track_ids, str) else list(track_ids)
    return [view[t] for t in ids if t in view]


def rights_in_force(
    view: Mapping[str, State], track_ids: str | Iterable[str], territory: str, t: int
) -> list[Any] | None:
    """The latest ``rights.changed`` entry (by occurred_at, event_id) for the territory with
    occurred_at <= t across the given uploads, or None."""
    best: list[Any] | None = None
    for state in _states(view, track_ids):
        history = state["rights"].get(territory)
        if not history:
            continue
        i = bisect.bisect_right(history, t, key=lambda e: e[0])  # entries with occurred_at <= t
        if i and (best is None or (history[i - 1][0], history[i - 1][1]) > (best[0], best[1])):
            best = history[i - 1]
    return best


def rights_allow(view: Mapping[str, State], track_ids: str | Iterable[str], territory: str, t: int) -> bool:
    """royalties.md rule 3: the latest rights.changed for (track, territory) with occurred_at <= t exists,
    has allowed = true, valid_from <= t (or null) and t < valid_to (or null)."""
    return rules.rights_allow(rights_in_force(view, track_ids, territory, t), t)


def taken_down(view: Mapping[str, State], track_ids: str | Iterable[str], territory: str, t: int) -> bool:
    """royalties.md rule 4: some track.taken_down with occurred_at <= t lists the territory or "*"."""
    for state in _states(view, track_ids):
        for at, _eid, territories, _reason in state["takedowns"]:
            if at > t:
                break
            if rules.takedown_covers(territories, territory):
                return True
    return False


def allowed_at(
    view: Mapping[str, State],
    track_ids: str | Iterable[str],
    territory: str,
    t: int,
    *,
    takedowns: bool = True,
) -> bool:
    """May the logical track be streamed in ``territory`` at event time ``t`` (epoch ms)?

    ``view`` maps upload ids to rights states; ``track_ids`` is the canonical id and its aliases (or one
    id). Rule 3 always; rule 4 too unless ``takedowns=False``.
    """
    if not rights_allow(view, track_ids, territory, t):
        return False
    return not (takedowns and taken_down(view, track_ids, territory, t))


def is_playable(view: Mapping[str, State], track_ids: str | Iterable[str], country: str, now_ms: int) -> bool:
    """The API's current answer: rights and takedowns as of ``now_ms`` (the caller's clock, passed in)."""
    return allowed_at(view, track_ids, country, now_ms, takedowns=True)


def playability(view: Mapping[str, State], track_ids: str | Iterable[str], now_ms: int) -> dict[str, bool]:
    """The current playability matrix: territory -> playable, for every territory any rights event of
    these uploads names (territories without one are not playable, and not listed)."""
    territories: set[str] = set()
    for state in _states(view, track_ids):
        territories |= set(state["rights"])
    return {c: is_playable(view, track_ids, c, now_ms) for c in sorted(territories)}
