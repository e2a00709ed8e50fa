"""Spotify Web API objects rendered from the replica: artists, albums, tracks, devices, playback state,
playlists.

Pure functions of a :class:`playback.replica_state.ReplicaState` (read only) and the request's base URL
(for ``href`` fields); no aiohttp. Callers that render many objects hold ``replica.lock`` around them,
as the route modules do, so one response sees one state.
"""

from __future__ import annotations

from typing import Any

from core.timefmt import format_ts
from playback import pii_reader
from playback.replica_state import ReplicaState
from playback.search import popularity_of
from processors import player as player_fold


def uri(kind: str, item_id: str) -> str:
    return f"spotify:{kind}:{item_id}"


def artist_ref(replica: ReplicaState, base: str, artist_id: str) -> dict:
    doc = replica.artists.get(artist_id) or {}
    return {"id": artist_id, "name": doc.get("name"), "type": "artist", "uri": uri("artist", artist_id),
            "href": f"{base}/v1/artists/{artist_id}"}


def artist_object(replica: ReplicaState, base: str, artist_id: str) -> dict:
    doc = replica.artists.get(artist_id) or {}
    return {**artist_ref(replica, base, artist_id), "genres": list(doc.get("genres") or []),
            "popularity": 0, "images": []}


def album_object(replica: ReplicaState, base: str, album_id: str | None) -> dict | None:
    if not album_id:
        return None
    doc = replica.albums.get(album_id) or {}
    artwork = doc.get("artwork_uri")
    return {
        "id": album_id, "name": doc.get("title"), "type": "album", "album_type": "album",
        "uri": uri("album", album_id), "href": f"{base}/v1/albums/{album_id}",
        "release_date": doc.get("release_date"), "release_date_precision": "day",
        "label": doc.get("label"),
        "artists": [artist_ref(replica, base, a) for a in doc.get("artist_ids") or []],
        "images": [{"url": artwork, "height": None, "width": None}] if artwork else [],
    }


def track_object(replica: ReplicaState, base: str, canon: str, market: str | None, now_ms: int,
                 linked_from: str | None = None) -> dict:
    """A track object; with ``market``, ``is_playable`` (and ``restrictions`` when not) for it."""
    doc = replica.track_doc(canon) or {"track_id": canon}
    obj = {
        "id": canon, "type": "track", "uri": uri("track", canon), "href": f"{base}/v1/tracks/{canon}",
        "name": doc.get("title"),
        "artists": [artist_ref(replica, base, a) for a in doc.get("artist_ids") or []],
        "album": album_object(replica, base, doc.get("album_id")),
        "duration_ms": doc.get("duration_ms"), "explicit": bool(doc.get("explicit")),
        "external_ids": {"isrc": doc.get("isrc")} if doc.get("isrc") else {},
        "popularity": popularity_of(replica.streams.get(canon, 0)),
        "genres": list(doc.get("genres") or []),
        "is_local": False,
        "has_audio": bool(doc.get("ladder")),
    }
    if market:
        ok, reason = replica.playability(canon, market, now_ms)
        obj["is_playable"] = ok
        if not ok:
            obj["restrictions"] = {"reason": "market", "message": reason}
    if linked_from and linked_from != canon:
        obj["linked_from"] = {"id": linked_from, "type": "track", "uri": uri("track", linked_from),
                              "href": f"{base}/v1/tracks/{linked_from}"}
    return obj


def devices(user: dict) -> dict[str, dict]:
    """The user document's devices by id."""
    return {d["device_id"]: d for d in user.get("devices") or []}


def device_object(user: dict | None, device_id: str, state: dict) -> dict:
    dev = devices(user or {}).get(device_id, {})
    return {"id": device_id, "is_active": True, "is_private_session": False, "is_restricted": False,
            "name": pii_reader.read((user or {}).get("user_id", ""), "name", dev.get("name")),
            "type": dev.get("device_type"), "supports_volume": True,
            "volume_percent": state["volumes"].get(device_id)}


def playback_state(replica: ReplicaState, base: str, user: dict | None, state: dict, now_ms: int) -> dict:
    """The ``GET /v1/me/player`` object for a player fold state with an item and an active device."""
    market = (user or {}).get("country")
    with replica.lock:
        canon = replica.canonical_id(state["item"]) or state["item"]
        doc = replica.track_doc(canon)
        item = track_object(replica, base, canon, market, now_ms) if doc else None
    context = None
    if state.get("context_uri"):
        context = {"uri": state["context_uri"], "type": state["context_uri"].split(":")[1]}
    return {
        "device": device_object(user, state["active_device"], state),
        "repeat_state": "off", "shuffle_state": False, "context": context, "timestamp": now_ms,
        "progress_ms": player_fold.progress_ms(state, now_ms, (doc or {}).get("duration_ms")),
        "is_playing": state["playing"], "item": item, "currently_playing_type": "track",
        "queue_position": state["index"], "queue": [uri("track", t) for t in player_fold.upcoming(state)],
        "actions": {"disallows": {}},
    }


def playlist_object(replica: ReplicaState, base: str, state: dict, now_ms: int) -> dict:
    """A playlist object (tracks page included) for a playlists-fold state."""
    pid = state["playlist_id"]
    with replica.lock:
        items: list[dict[str, Any]] = []
        for e in state["entries"]:
            canon = replica.canonical_id(e["track_id"]) or e["track_id"]
            track = (track_object(replica, base, canon, None, now_ms) if canon in replica.tracks
                     else {"id": e["track_id"], "type": "track", "uri": uri("track", e["track_id"])})
            items.append({"added_at": format_ts(e["added_at"]), "added_by": {"id": e["added_by"], "type": "user"},
                          "is_local": False, "track": track})
    return {
        "id": pid, "type": "playlist", "uri": uri("playlist", pid), "href": f"{base}/v1/playlists/{pid}",
        "name": state["name"], "public": state["public"], "collaborative": state["collaborative"],
        "collaborators": list(state.get("collaborators") or []),
        "owner": {"id": state["owner_id"], "type": "user", "uri": uri("user", state["owner_id"])},
        "snapshot_id": state["snapshot_id"], "description": None, "images": [],
        "tracks": {"href": f"{base}/v1/playlists/{pid}/tracks", "items": items, "limit": len(items),
                   "offset": 0, "total": len(items), "next": None, "previous": None},
    }
