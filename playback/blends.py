"""Blend playlists: virtual, generated daily for two users who follow each other.

A blend has no events and no view document: its id is ``blend:<a>:<b>`` (the two user ids, ``a < b``;
clients see its public id, playback/ids.py) and its entries are :func:`processors.recs.blend.blend`
over the two taste profiles, the catalog and the caller's country, for the current UTC day. It reads
as a playlist (``GET /v1/playlists/{id}`` and ``/tracks``) to its two members only, while each
follows the other; for anyone else, or once a follow ends, it is not found. It cannot be edited or
followed (it belongs to neither user: its owner is :data:`OWNER`).

Reads replica state only through :class:`playback.replica_state.ReplicaState`'s interface
(``follows``, ``taste_profile``, the catalog lookups, ``playability``).
"""

from __future__ import annotations

import hashlib

from playback import pii_reader
from playback.replica_state import ReplicaState
from processors.recs import blend as blend_fold

PREFIX = "blend:"
OWNER = "playlog"


def blend_id(a: str, b: str) -> str:
    x, y = sorted((a, b))
    return f"{PREFIX}{x}:{y}"


def members(playlist_id: str) -> tuple[str, str] | None:
    """The two users of a blend id (None when it is not one)."""
    if not playlist_id.startswith(PREFIX):
        return None
    parts = playlist_id[len(PREFIX):].split(":")
    if len(parts) != 2 or not all(parts) or parts[0] >= parts[1]:
        return None
    return parts[0], parts[1]


def mutual(replica: ReplicaState, a: str, b: str) -> bool:
    """Do ``a`` and ``b`` (two different users, neither erased) follow each other?"""
    if a == b or a in replica.erased or b in replica.erased:
        return False
    return b in replica.follows(a, "user") and a in replica.follows(b, "user")


def blends_of(replica: ReplicaState, user_id: str) -> list[str]:
    """Blend ids of the user: one per user they follow who follows them back, in id order."""
    return sorted(blend_id(user_id, f) for f in replica.follows(user_id, "user") if mutual(replica, user_id, f))


def _name(replica: ReplicaState, uid: str) -> str:
    doc = replica.users.get(uid) or {}
    return pii_reader.read(uid, "display_name", doc.get("display_name")) or uid


def blend_state(replica: ReplicaState, playlist_id: str, caller: str, now_ms: int) -> dict | None:
    """The blend as a playlists-fold-shaped state (what ``render.playlist_object`` takes) for
    ``caller``, or None when ``playlist_id`` is not a blend the caller may read now."""
    pair = members(playlist_id)
    if pair is None or caller not in pair or not mutual(replica, *pair):
        return None
    other = pair[1] if caller == pair[0] else pair[0]
    country = (replica.users.get(caller) or {}).get("country")
    day = blend_fold.utc_day(now_ms)

    def playable(track_id: str) -> bool:
        return bool(country) and replica.playability(track_id, country, now_ms)[0]

    with replica.lock:
        entries = blend_fold.blend(caller, replica.taste_profile(caller), other, replica.taste_profile(other),
                                   replica, playable, day, popularity=replica.popular(country or ""))
    added_at = blend_fold.day_start_ms(day)
    rows = [{"track_id": e["track_id"], "added_by": e["user_ids"][0], "added_at": added_at} for e in entries]
    digest = hashlib.sha256("|".join([playlist_id, day, *(e["track_id"] for e in entries)]).encode()).hexdigest()
    return {
        "playlist_id": playlist_id, "owner_id": OWNER, "name": f"{_name(replica, caller)} + {_name(replica, other)}",
        "public": False, "collaborative": False, "collaborators": list(pair), "snapshot_id": digest[:32],
        "entries": rows, "version": 0, "deleted": False, "blend": {"day": day, "user_ids": list(pair)},
    }
