"""Library view: what a user starred (tracks, albums, artists), from ``library.*`` events.

Key: ``user_id`` (the library topic's key). Events: ``library.starred`` and ``library.unstarred``
(user_id, item_type "track"|"album"|"artist", item_id): the Subsonic API's ``star`` / ``unstar``.

State, plain JSON-able data, and also the view document (the API folds its own just-produced events
on top of it for read-your-writes, so the document must be the whole state)::

    {"user_id": str,
     "items": {"<item_type>:<item_id>": {"at": int, "event_id": str, "starred": bool}}}

The latest event per item by (occurred_at, event_id) is in force, so duplicates change nothing and
arrival order does not matter. An unstarred item keeps its entry (``starred`` false) so that an older
``library.starred`` arriving later cannot bring it back.

Outputs: ``{"kind": "view", "key": user_id, "view": to_view(state)}`` on change;
``{"kind": "dead_letter", "reason", "event"}`` for events this fold does not take.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

State = dict[str, Any]
Outputs = list[dict[str, Any]]
LIBRARY_TYPES = frozenset({"library.starred", "library.unstarred"})


def new_state(user_id: str) -> State:
    return {"user_id": user_id, "items": {}}


def item_key(item_type: str, item_id: str) -> str:
    return f"{item_type}:{item_id}"


def evolve(state: State | None, event: Mapping[str, Any]) -> tuple[State, Outputs]:
    """Fold one library event into the state of its ``user_id``. The input state is not mutated."""
    etype = event.get("type")
    user_id = event.get("user_id")
    if state is None:
        state = new_state(user_id)  # type: ignore[arg-type]
    if etype not in LIBRARY_TYPES:
        return state, [_dead(event, f"the library fold does not take {etype!r} events")]
    if state["user_id"] != user_id:
        return state, [_dead(event, f"event for {user_id!r} reached the library of {state['user_id']!r}")]
    key = item_key(event["item_type"], event["item_id"])
    current = state["items"].get(key)
    if current is not None and (event["occurred_at"], event["event_id"]) <= (current["at"], current["event_id"]):
        return state, []
    entry = {"at": event["occurred_at"], "event_id": event["event_id"], "starred": etype == "library.starred"}
    new = {**state, "items": {**state["items"], key: entry}}
    return new, [{"kind": "view", "key": new["user_id"], "view": to_view(new)}]


def _dead(event: Mapping[str, Any], reason: str) -> dict[str, Any]:
    return {"kind": "dead_letter", "reason": reason, "event": dict(event)}


def to_view(state: Mapping[str, Any]) -> dict[str, Any]:
    """The library document: the state itself (see the module doc)."""
    return {"user_id": state["user_id"], "items": {k: dict(v) for k, v in state["items"].items()}}


def starred(state: Mapping[str, Any] | None, item_type: str | None = None) -> Iterator[tuple[str, str, int]]:
    """``(item_type, item_id, starred_at)`` of every starred item (of ``item_type`` if given), oldest
    star first."""
    if not state:
        return
    rows = []
    for key, entry in state["items"].items():
        kind, _, item_id = key.partition(":")
        if entry["starred"] and (item_type is None or kind == item_type):
            rows.append((entry["at"], entry["event_id"], kind, item_id))
    for at, _eid, kind, item_id in sorted(rows):
        yield kind, item_id, at


def starred_at(state: Mapping[str, Any] | None, item_type: str, item_id: str) -> int | None:
    """When the item was starred (event time), None when it is not starred."""
    entry = (state or {}).get("items", {}).get(item_key(item_type, item_id))
    return entry["at"] if entry and entry["starred"] else None
