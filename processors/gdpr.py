"""The GDPR export (right of access): everything held about one user, from the events of the log.

Pure: :func:`build_export` takes the decoded events of the source topics (any order within a topic
is fine: each fold orders by (occurred_at, event_id) or by log order as the topics do) and a reader
of sealed personal fields (core/pii.py ``read_field`` with the key store's lookup), and returns a
JSON-able document::

    {"user_id", "profile": users view (display and device names in clear, or None once erased),
     "devices": [...], "plays": [listening events of the user, by (occurred_at, event_id)],
     "player": [player commands], "playlists": [playlist views the user owns or collaborates on],
     "library": library view (starred items), "taste": taste summary (top artists/genres, recent tracks),
     "credentials": [app password ids issued and revoked (never the passwords)],
     "counts": {kind: n}}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from processors import library, playlists, taste, users

FieldReader = Callable[[str, str, "str | None"], "str | None"]  # (user_id, field, value) -> shown value


def _order(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(events, key=lambda e: (e.get("occurred_at", 0), e.get("event_id", "")))


def build_export(user_id: str, by_topic: Mapping[str, Iterable[Mapping[str, Any]]], read: FieldReader,
                 now_ms: int) -> dict[str, Any]:
    """The export of ``user_id`` from the events of each topic (catalog names: users, listening, player,
    playlists, library, credentials, catalog)."""
    mine = {t: [e for e in evs if e.get("user_id") == user_id] for t, evs in by_topic.items()
            if t in ("users", "listening", "player", "library", "credentials")}
    state = None
    for e in _order(mine.get("users", [])):
        state, _ = users.evolve(state, e)
    profile = users.to_view(state) if state else None
    if profile:
        profile = {**profile, "display_name": read(user_id, "display_name", profile["display_name"]),
                   "devices": [{**d, "name": read(user_id, "name", d["name"])} for d in profile["devices"]]}

    plays = [dict(e) for e in _order(mine.get("listening", []))]
    tracks = {e["track_id"]: e for e in by_topic.get("catalog", []) if e.get("type") == "track.ingested"}
    profile_state = None
    for e in plays:
        t = tracks.get(e.get("track_id"), {})
        for s in taste.signals_from_play_event(e, t.get("artist_ids") or [], t.get("genres") or []):
            profile_state, _ = taste.evolve(profile_state, s)

    lib = None
    for e in _order(mine.get("library", [])):
        lib, _ = library.evolve(lib, e)

    states: dict[str, Any] = {}
    for e in by_topic.get("playlists", []):  # log order per playlist (the topic's order of edits)
        pid = e.get("playlist_id")
        states[pid], _ = playlists.evolve(states.get(pid), e)
    lists = []
    for st in states.values():
        if st is None:
            continue
        view = playlists.to_view(st)
        if view.get("owner_id") == user_id or user_id in (view.get("collaborators") or []):
            lists.append(view)
    lists.sort(key=lambda v: v.get("playlist_id", ""))

    creds = [{k: e.get(k) for k in ("type", "password_id", "occurred_at")}
             for e in _order(mine.get("credentials", []))]
    out = {
        "user_id": user_id,
        "profile": profile,
        "devices": profile["devices"] if profile else [],
        "plays": plays,
        "player": [dict(e) for e in _order(mine.get("player", []))],
        "playlists": lists,
        "library": library.to_view(lib) if lib else None,
        "taste": taste.to_view(profile_state, now_ms) if profile_state else None,
        "credentials": creds,
    }
    out["counts"] = {k: len(out[k]) for k in ("devices", "plays", "player", "playlists", "credentials")}
    return out
