"""Playlists view: ordered entries, Spotify reorder semantics, permissions, snapshot ids.

Key: ``playlist_id``. The playlists topic's per-partition order is the single order of edits (events.md),
so this fold applies events in arrival order.

State (None until ``playlist.created``), plain JSON-able data::

    {"playlist_id", "owner_id", "name", "collaborative": bool, "public": bool,
     "collaborators": [user_id, ...] (sorted),
     "entries": [{"track_id", "added_by", "added_at"}, ...],   # in playlist order
     "version": int,            # applied edits, creation = 1
     "snapshot_id": str,        # see snapshot_after
     "created_at": int,
     "seen": [event_id, ...]}   # recent event ids (dedupe window)

Rules:

* ``tracks_added``: ``position`` null appends; 0 <= position <= len inserts before it; position > len
  is rejected (Spotify answers 400). Empty ``track_ids`` is rejected.
* ``tracks_removed``: removes every occurrence of each listed id (ids not present are fine).
* ``tracks_moved``: Spotify's reorder: the range [range_start, range_start + range_length) is moved so it
  sits before the item that was at ``insert_before`` (``insert_before = len`` moves it to the end;
  an insert_before inside the range leaves the order as it is). Needs range_length >= 1,
  range_start + range_length <= len and insert_before <= len, else rejected.
* Who may edit: tracks -- the owner, and collaborators while the playlist is collaborative;
  ``details_changed``, ``collaborator_added`` and ``deleted`` -- the owner only.
* ``playlist.deleted``: the playlist is gone for good (state and document get ``"deleted": true``,
  readers treat it as not found); any later edit is rejected.
* An event for a playlist not created yet, a second ``playlist.created``, a forbidden or invalid edit:
  ``{"kind": "dead_letter", "reason", "event"}`` and the state unchanged.

Snapshot ids: every applied event bumps ``version`` and chains a hash:
``snapshot_id = base64url("<version>,<sha256(previous snapshot_id + canonical JSON of the event)[:40 hex]>")``,
so it is a deterministic function of the sequence of applied edits (the shape of Spotify's ids).

Idempotency: the last ``DEDUPE_WINDOW`` event ids applied or rejected are remembered; a redelivered one
changes nothing (no version bump, no output). Events before creation leave no state at all, so their
redelivery is dead-lettered again (the dead-letter sink is idempotent by source offset).

Outputs: ``{"kind": "view", "key": playlist_id, "view": to_view(state)}`` after each applied edit.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

State = dict[str, Any]
Outputs = list[dict[str, Any]]
DEDUPE_WINDOW = 1024
PLAYLIST_TYPES = frozenset(
    {
        "playlist.created",
        "playlist.tracks_added",
        "playlist.tracks_removed",
        "playlist.tracks_moved",
        "playlist.details_changed",
        "playlist.collaborator_added",
        "playlist.deleted",
    }
)


def snapshot_after(previous: str, event: Mapping[str, Any], version: int) -> str:
    """The snapshot id after applying ``event`` as edit number ``version`` on top of ``previous``."""
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256((previous + "\n" + canonical).encode()).hexdigest()[:40]
    return base64.urlsafe_b64encode(f"{version},{digest}".encode()).decode().rstrip("=")


def move_range(items: Sequence[Any], range_start: int, range_length: int, insert_before: int) -> list[Any]:
    """Spotify's reorder on a list (arguments already validated by :func:`move_error`)."""
    end = range_start + range_length
    block = list(items[range_start:end])
    rest = list(items[:range_start]) + list(items[end:])
    if insert_before <= range_start:
        at = insert_before
    elif insert_before >= end:
        at = insert_before - range_length
    else:  # inside the moved range: the order stays as it is
        at = range_start
    return rest[:at] + block + rest[at:]


def move_error(length: int, range_start: int, range_length: int, insert_before: int) -> str | None:
    """Why a reorder is invalid for a playlist of ``length`` items, or None."""
    if range_start < 0 or range_length < 0 or insert_before < 0:
        return "range_start, range_length and insert_before must not be negative"
    if range_length < 1:
        return "range_length must be at least 1"
    if range_start + range_length > length:
        return f"range {range_start}..{range_start + range_length} is beyond the playlist's {length} items"
    if insert_before > length:
        return f"insert_before {insert_before} is beyond the playlist's {length} items"
    return None


def can_edit_tracks(state: Mapping[str, Any], user_id: str) -> bool:
    return user_id == state["owner_id"] or (state["collaborative"] and user_id in state["collaborators"])


def evolve(
    state: State | None, event: Mapping[str, Any], *, window: int = DEDUPE_WINDOW
) -> tuple[State | None, Outputs]:
    """Fold one playlist event into its playlist's state (None before creation). Input never mutated."""
    etype = event.get("type")
    if etype not in PLAYLIST_TYPES:
        return state, [_dead(event, f"the playlists fold does not take {etype!r} events")]
    if state is None:
        if etype != "playlist.created":
            return None, [_dead(event, f"playlist {event['playlist_id']!r} does not exist")]
        return _create(event, window)
    if state["playlist_id"] != event["playlist_id"]:
        return state, [
            _dead(event, f"event for {event['playlist_id']!r} reached playlist {state['playlist_id']!r}")
        ]
    eid = event["event_id"]
    if eid in state["seen"]:
        return state, []
    seen = [*state["seen"], eid][-window:]
    new, reason = _apply(state, event)
    if reason is not None:
        return {**state, "seen": seen}, [_dead(event, reason)]
    version = state["version"] + 1
    new.update(version=version, snapshot_id=snapshot_after(state["snapshot_id"], event, version), seen=seen)
    return new, [{"kind": "view", "key": new["playlist_id"], "view": to_view(new)}]


def _dead(event: Mapping[str, Any], reason: str) -> dict[str, Any]:
    return {"kind": "dead_letter", "reason": reason, "event": dict(event)}


def _create(event: Mapping[str, Any], window: int) -> tuple[State, Outputs]:
    state = {
        "playlist_id": event["playlist_id"],
        "owner_id": event["owner_id"],
        "name": event["name"],
        "collaborative": bool(event["collaborative"]),
        "public": bool(event["public"]),
        "collaborators": [],
        "entries": [],
        "version": 1,
        "snapshot_id": snapshot_after("", event, 1),
        "created_at": event["occurred_at"],
        "seen": [event["event_id"]][-window:],
    }
    return state, [{"kind": "view", "key": state["playlist_id"], "view": to_view(state)}]


def _apply(state: State, event: Mapping[str, Any]) -> tuple[State, str | None]:
    etype = event["type"]
    user = event.get("user_id")
    entries = state["entries"]
    new = dict(state)
    if etype == "playlist.created":
        return state, f"playlist {state['playlist_id']!r} already exists"
    if state.get("deleted"):
        return state, f"playlist {state['playlist_id']!r} was deleted"
    if etype in ("playlist.details_changed", "playlist.collaborator_added", "playlist.deleted"):
        if user != state["owner_id"]:
            return state, f"user {user!r} is not the owner of playlist {state['playlist_id']!r}"
        if etype == "playlist.deleted":
            new["deleted"] = True
        elif etype == "playlist.collaborator_added":
            new["collaborators"] = sorted({*state["collaborators"], event["collaborator_id"]})
        else:
            for field in ("name", "collaborative", "public"):
                if event[field] is not None:
                    new[field] = event[field]
        return new, None
    if not can_edit_tracks(state, user):  # type: ignore[arg-type]
        return state, f"user {user!r} may not edit the tracks of playlist {state['playlist_id']!r}"
    if etype == "playlist.tracks_added":
        if not event["track_ids"]:
            return state, "tracks_added has no track_ids"
        position = event["position"]
        if position is None:
            position = len(entries)
        elif not 0 <= position <= len(entries):
            return state, f"position {position} is beyond the playlist's {len(entries)} items"
        added = [
            {"track_id": t, "added_by": user, "added_at": event["occurred_at"]} for t in event["track_ids"]
        ]
        new["entries"] = entries[:position] + added + entries[position:]
    elif etype == "playlist.tracks_removed":
        if not event["track_ids"]:
            return state, "tracks_removed has no track_ids"
        gone = set(event["track_ids"])
        new["entries"] = [e for e in entries if e["track_id"] not in gone]
    else:  # tracks_moved
        rs, rl, ib = event["range_start"], event["range_length"], event["insert_before"]
        reason = move_error(len(entries), rs, rl, ib)
        if reason:
            return state, reason
        new["entries"] = move_range(entries, rs, rl, ib)
    return new, None


def track_ids(state: Mapping[str, Any]) -> list[str]:
    return [e["track_id"] for e in state["entries"]]


def to_view(state: Mapping[str, Any]) -> dict[str, Any]:
    """The playlist document: ``{"playlist_id", "owner_id", "name", "collaborative", "public",
    "collaborators", "snapshot_id", "version", "total", "tracks": [{"track_id", "added_by", "added_at"}]}``,
    plus ``"deleted": true`` once deleted."""
    doc = {
        "playlist_id": state["playlist_id"],
        "owner_id": state["owner_id"],
        "name": state["name"],
        "collaborative": state["collaborative"],
        "public": state["public"],
        "collaborators": list(state["collaborators"]),
        "snapshot_id": state["snapshot_id"],
        "version": state["version"],
        "total": len(state["entries"]),
        "tracks": [dict(e) for e in state["entries"]],
    }
    if state.get("deleted"):
        doc["deleted"] = True
    return doc
