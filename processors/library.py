"""Library view: what a user starred (tracks, albums, artists) and follows (artists, users,
playlists), and when their private sessions were on, from ``library.*`` events.

Key: ``user_id`` (the library topic's key). Events:

- ``library.starred`` / ``library.unstarred`` (user_id, item_type "track"|"album"|"artist", item_id):
  the Subsonic API's ``star`` / ``unstar``;
- ``library.followed`` (user_id, target_type "artist"|"user"|"playlist", target_id, public) /
  ``library.unfollowed`` (user_id, target_type, target_id): the Spotify follow routes;
- ``library.private_session_set`` (user_id, enabled): a private session starts (true) or ends (false).

State, plain JSON-able data, and also the view document (the API folds its own just-produced events
on top of it for read-your-writes, so the document must be the whole state)::

    {"user_id": str,
     "items": {"<item_type>:<item_id>": {"at": int, "event_id": str, "starred": bool}},
     "follows": {"<target_type>:<target_id>": {"at": int, "event_id": str, "following": bool,
                                               "public": bool}},
     "private": [[at, event_id, enabled], ...]}   # sorted by (at, event_id), the newest PRIVATE_KEPT

(documents written before follows existed lack ``follows`` / ``private``: read as empty.)

Stars and follows: the latest event per item by (occurred_at, event_id) is in force, so duplicates
change nothing and arrival order does not matter. An unstarred (unfollowed) item keeps its entry
(``starred`` / ``following`` false) so that an older star (follow) arriving later cannot bring it back.

Private sessions: every toggle is kept (the newest :data:`PRIVATE_KEPT` by (occurred_at, event_id):
the top k of a set, so still order-free and idempotent). At time t the session is private when the
latest toggle at or before t says ``enabled``; so a play is private by its own event time, whenever
it or the toggle arrives (:func:`private_at`).

Outputs: ``{"kind": "view", "key": user_id, "view": to_view(state)}`` on change;
``{"kind": "dead_letter", "reason", "event"}`` for events this fold does not take.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from typing import Any

State = dict[str, Any]
Outputs = list[dict[str, Any]]
STAR_TYPES = frozenset({"library.starred", "library.unstarred"})
FOLLOW_TYPES = frozenset({"library.followed", "library.unfollowed"})
PRIVATE_SESSION = "library.private_session_set"
LIBRARY_TYPES = STAR_TYPES | FOLLOW_TYPES | {PRIVATE_SESSION}
FOLLOW_TARGETS = ("artist", "user", "playlist")
PRIVATE_KEPT = 512  # private-session toggles kept per user (the newest)


def new_state(user_id: str) -> State:
    return {"user_id": user_id, "items": {}, "follows": {}, "private": []}


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
    if etype == PRIVATE_SESSION:
        new = _toggle(state, event)
        if new is None:
            return state, []
    else:
        table, key, entry = _entry(event)
        current = state.get(table, {}).get(key)
        if current is not None and (event["occurred_at"], event["event_id"]) <= (current["at"], current["event_id"]):
            return state, []
        new = {**state, table: {**state.get(table, {}), key: entry}}
    return new, [{"kind": "view", "key": new["user_id"], "view": to_view(new)}]


def _entry(event: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(table, key, entry) of a star or follow event."""
    etype, at, eid = event["type"], event["occurred_at"], event["event_id"]
    if etype in STAR_TYPES:
        return "items", item_key(event["item_type"], event["item_id"]), {
            "at": at, "event_id": eid, "starred": etype == "library.starred"}
    following = etype == "library.followed"
    return "follows", item_key(event["target_type"], event["target_id"]), {
        "at": at, "event_id": eid, "following": following, "public": bool(following and event.get("public", True))}


def _toggle(state: State, event: Mapping[str, Any]) -> State | None:
    """The state with the private-session toggle added (None when it changes nothing: a duplicate, or
    older than every kept toggle of a full list)."""
    row = [event["occurred_at"], event["event_id"], bool(event["enabled"])]
    rows = [list(r) for r in state.get("private", [])]
    if any(r[1] == row[1] for r in rows):
        return None
    rows = sorted([*rows, row], key=lambda r: (r[0], r[1]))[-PRIVATE_KEPT:]
    if row not in rows:
        return None
    return {**state, "private": rows}


def _dead(event: Mapping[str, Any], reason: str) -> dict[str, Any]:
    return {"kind": "dead_letter", "reason": reason, "event": dict(event)}


def to_view(state: Mapping[str, Any]) -> dict[str, Any]:
    """The library document: the state itself (see the module doc)."""
    return {"user_id": state["user_id"], "items": {k: dict(v) for k, v in state["items"].items()},
            "follows": {k: dict(v) for k, v in state.get("follows", {}).items()},
            "private": [list(r) for r in state.get("private", [])]}


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


def following(state: Mapping[str, Any] | None, target_type: str) -> list[tuple[str, int]]:
    """``(target_id, followed_at)`` of every ``target_type`` the user follows, oldest follow first
    (then by id)."""
    rows = []
    for key, entry in ((state or {}).get("follows") or {}).items():
        kind, _, target_id = key.partition(":")
        if entry["following"] and kind == target_type:
            rows.append((entry["at"], entry["event_id"], target_id))
    return [(target_id, at) for at, _eid, target_id in sorted(rows)]


def follows(state: Mapping[str, Any] | None, target_type: str, target_id: str) -> bool:
    entry = ((state or {}).get("follows") or {}).get(item_key(target_type, target_id))
    return bool(entry and entry["following"])


def private_at(state: Mapping[str, Any] | None, at_ms: int) -> bool:
    """Was the user in a private session at event time ``at_ms`` (the latest toggle at or before it
    says enabled; a toggle at the same millisecond counts)?"""
    rows = (state or {}).get("private") or []
    i = bisect.bisect_right([r[0] for r in rows], at_ms)
    return bool(i and rows[i - 1][2])


def private_now(state: Mapping[str, Any] | None) -> bool:
    """Is the latest toggle ``enabled`` (the session is private from then on)?"""
    rows = (state or {}).get("private") or []
    return bool(rows and rows[-1][2])
