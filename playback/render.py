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
from playback.ids import public_id as pub
from playback.ids import public_uri
from playback.replica_state import ReplicaState
from playback.search import popularity_of
from processors import library as library_fold
from processors import player as player_fold


def uri(kind: str, item_id: str) -> str:
    """``spotify:<kind>:<public id>`` (playback/ids.py: a non-alphanumeric id becomes its alias)."""
    return public_uri(kind, item_id)


def artist_ref(replica: ReplicaState, base: str, artist_id: str) -> dict:
    doc = replica.artists.get(artist_id) or {}
    return {"id": pub(artist_id), "name": doc.get("name"), "type": "artist", "uri": uri("artist", artist_id),
            "href": f"{base}/v1/artists/{pub(artist_id)}",
            "external_urls": {"spotify": f"{base}/artist/{pub(artist_id)}"}}


def artist_object(replica: ReplicaState, base: str, artist_id: str) -> dict:
    doc = replica.artists.get(artist_id) or {}
    return {**artist_ref(replica, base, artist_id), "genres": list(doc.get("genres") or []),
            "popularity": 0, "images": [],
            "followers": {"href": None, "total": replica.followers_count("artist", artist_id)}}


def album_object(replica: ReplicaState, base: str, album_id: str | None) -> dict | None:
    if not album_id:
        return None
    doc = replica.albums.get(album_id) or {}
    artwork = doc.get("artwork_uri")
    return {
        "id": pub(album_id), "name": doc.get("title"), "type": "album", "album_type": "album", "album_group": "album",
        "uri": uri("album", album_id), "href": f"{base}/v1/albums/{pub(album_id)}",
        "release_date": doc.get("release_date"), "release_date_precision": "day",
        "label": doc.get("label"),
        "artists": [artist_ref(replica, base, a) for a in doc.get("artist_ids") or []],
        "images": [{"url": artwork, "height": None, "width": None}] if artwork else [],
        "total_tracks": len(replica.album_tracks(album_id)), "available_markets": [],
        "external_urls": {"spotify": f"{base}/album/{pub(album_id)}"},
    }


def _track_number(replica: ReplicaState, album_id: str | None, canon: str) -> int:
    """1-based position of the track on its album (album_tracks order), 1 when not found."""
    tracks = replica.album_tracks(album_id) if album_id else []
    return tracks.index(canon) + 1 if canon in tracks else 1


def page(href: str, items: list, offset: int, limit: int, total: int, extra: str = "") -> dict:
    """A Spotify paging object; ``href`` without query, ``extra`` more query (``&k=v``) kept in links."""
    def link(at: int) -> str:
        return f"{href}?offset={at}&limit={limit}{extra}"

    return {"href": link(offset), "items": items, "limit": limit, "offset": offset, "total": total,
            "next": link(offset + limit) if limit and offset + limit < total else None,
            "previous": link(max(0, offset - limit)) if offset > 0 else None}


def track_object(replica: ReplicaState, base: str, canon: str, market: str | None, now_ms: int,
                 linked_from: str | None = None) -> dict:
    """A track object; with ``market``, ``is_playable`` (and ``restrictions`` when not) for it."""
    doc = replica.track_doc(canon) or {"track_id": canon}
    obj = {
        "id": pub(canon), "type": "track", "uri": uri("track", canon), "href": f"{base}/v1/tracks/{pub(canon)}",
        "name": doc.get("title"),
        "artists": [artist_ref(replica, base, a) for a in doc.get("artist_ids") or []],
        "album": album_object(replica, base, doc.get("album_id")),
        "duration_ms": doc.get("duration_ms"), "explicit": bool(doc.get("explicit")),
        "external_ids": {"isrc": doc.get("isrc")} if doc.get("isrc") else {},
        "popularity": popularity_of(replica.streams.get(canon, 0)),
        "genres": list(doc.get("genres") or []),
        "is_local": False,
        "has_audio": bool(doc.get("ladder")),
        "disc_number": 1, "track_number": _track_number(replica, doc.get("album_id"), canon),
        "available_markets": [], "preview_url": None,
        "external_urls": {"spotify": f"{base}/track/{pub(canon)}"},
    }
    if market:
        ok, reason = replica.playability(canon, market, now_ms)
        obj["is_playable"] = ok
        if not ok:
            obj["restrictions"] = {"reason": "market", "message": reason}
    if linked_from and linked_from != canon:
        obj["linked_from"] = {"id": pub(linked_from), "type": "track", "uri": uri("track", linked_from),
                              "href": f"{base}/v1/tracks/{pub(linked_from)}"}
    return obj


def devices(user: dict) -> dict[str, dict]:
    """The user document's devices by id."""
    return {d["device_id"]: d for d in user.get("devices") or []}


def device_object(user: dict | None, device_id: str, state: dict | None, is_active: bool = True,
                  private: bool = False) -> dict:
    """A Spotify device object; ``private``: the user's private session is on (it is per user, so every
    device of theirs says so)."""
    dev = devices(user or {}).get(device_id, {})
    return {"id": device_id, "is_active": is_active, "is_private_session": private, "is_restricted": False,
            "name": pii_reader.read((user or {}).get("user_id", ""), "name", dev.get("name")),
            "type": dev.get("device_type"), "supports_volume": True,
            "volume_percent": ((state or {}).get("volumes") or {}).get(device_id)}


def device_list(user: dict | None, state: dict | None, private: bool = False) -> dict:
    """``GET /v1/me/player/devices``: every registered device of the user, ``is_active`` only for the
    player's active device."""
    active = (state or {}).get("active_device")
    return {"devices": [device_object(user, d, state, is_active=d == active, private=private)
                        for d in sorted(devices(user or {}))]}


def user_ref(base: str, user_id: str) -> dict:
    """The public user reference of playlist owners and ``added_by`` (Spotify's PlaylistUserObject)."""
    return {"id": user_id, "type": "user", "uri": f"spotify:user:{user_id}", "href": f"{base}/v1/users/{user_id}",
            "external_urls": {"spotify": f"{base}/user/{user_id}"}}


def user_object(base: str, user_id: str, user: dict | None) -> dict:
    """The private user object of ``GET /v1/me`` (``country``/``product`` from the users view)."""
    doc = user or {}
    return {"id": user_id, "account_id": user_id, "type": "user", "uri": f"spotify:user:{user_id}",
            "href": f"{base}/v1/users/{user_id}", "display_name": pii_reader.read(user_id, "display_name", doc.get("display_name")),
            "country": doc.get("country"), "product": doc.get("product"),
            "external_urls": {"spotify": f"{base}/user/{user_id}"},
            "followers": {"href": None, "total": 0}, "images": []}


def queue_object(replica: ReplicaState, base: str, user: dict | None, state: dict | None, now_ms: int) -> dict:
    """``GET /v1/me/player/queue``: the current track and the upcoming ones."""
    market = (user or {}).get("country")

    def item(track_id: str) -> dict:
        canon = replica.canonical_id(track_id) or track_id
        if replica.track_doc(canon) is None:
            return {"id": pub(track_id), "type": "track", "uri": uri("track", track_id)}
        return track_object(replica, base, canon, market, now_ms)

    if not state or state.get("item") is None:
        return {"currently_playing": None, "queue": []}
    with replica.lock:
        return {"currently_playing": item(state["item"]),
                "queue": [item(t) for t in player_fold.upcoming(state)]}


def playback_state(replica: ReplicaState, base: str, user: dict | None, state: dict, now_ms: int) -> dict:
    """The ``GET /v1/me/player`` object for a player fold state with an item and an active device."""
    market = (user or {}).get("country")
    with replica.lock:
        canon = replica.canonical_id(state["item"]) or state["item"]
        doc = replica.track_doc(canon)
        item = track_object(replica, base, canon, market, now_ms) if doc else None
    context = None
    if state.get("context_uri"):
        scheme, kind, ctx_id = state["context_uri"].split(":", 2)
        context = {"uri": f"{scheme}:{kind}:{pub(ctx_id)}", "type": kind, "href": f"{base}/v1/{kind}s/{pub(ctx_id)}",
                   "external_urls": {"spotify": f"{base}/{kind}/{pub(ctx_id)}"}}
    return {
        "device": device_object(user, state["active_device"], state,
                                private=library_fold.private_now(replica.library_state((user or {}).get("user_id", "")))),
        "repeat_state": state.get("repeat", "off"), "shuffle_state": bool(state.get("shuffle")),
        "smart_shuffle": False, "context": context, "timestamp": now_ms,
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
                     else {"id": pub(e["track_id"]), "type": "track", "uri": uri("track", e["track_id"])})
            items.append({"added_at": format_ts(e["added_at"]), "added_by": user_ref(base, e["added_by"]),
                          "is_local": False, "track": track, "item": track})
        owner = {**user_ref(base, state["owner_id"]), "display_name": pii_reader.read(
            state["owner_id"], "display_name", (replica.users.get(state["owner_id"]) or {}).get("display_name"))}
    return {
        "id": pub(pid), "type": "playlist", "uri": uri("playlist", pid),
        "href": f"{base}/v1/playlists/{pub(pid)}",
        "name": state["name"], "public": state["public"], "collaborative": state["collaborative"],
        "collaborators": list(state.get("collaborators") or []),
        "owner": owner,
        "snapshot_id": state["snapshot_id"], "description": None, "images": [],
        "followers": {"href": None, "total": replica.followers_count("playlist", pid)},
        "tracks": {"href": f"{base}/v1/playlists/{pub(pid)}/tracks", "items": items, "limit": len(items),
                   "offset": 0, "total": len(items), "next": None, "previous": None},
        "items": {"href": f"{base}/v1/playlists/{pub(pid)}/items", "items": items, "limit": len(items),
                  "offset": 0, "total": len(items), "next": None, "previous": None},
        "external_urls": {"spotify": f"{base}/playlist/{pub(pid)}"},
    }
