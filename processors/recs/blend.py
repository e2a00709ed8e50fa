"""Blend: one playlist mixed from two users' taste profiles, a pure function of (profiles, catalog,
rights check, UTC day).

:func:`blend` takes each user's top artists (positive affinity, :func:`processors.taste.score` at the
start of the day), then builds the entries:

1. *shared* artists (in both users' top lists) first, by their combined rank;
2. then the users' own top artists, alternating one track of user A's queue, one of user B's;

each artist giving its tracks by popularity, at most ``per_artist`` tracks per artist over the whole
blend (a track counts for each of its artists), only tracks ``playable(track_id)`` says the caller
may play (rights and takedowns in the caller's country), never a track twice, at most ``size``.

Daily refresh, deterministic. Every tie (equal affinity, equal popularity, who goes first) is broken by
a SHA-256 jitter of the UTC day (``YYYY-MM-DD``) and the id, then by the id: the same inputs give the
same blend all day, and a different one the next day wherever ties leave room. Who starts the
alternation is decided by the day too (both users lead on some days).

Entry record: ``{"track_id", "user_ids": [...]}`` -- whose taste brought the track (both for a shared
artist), the caller's order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from processors import taste
from processors.home import CatalogLookup

Profile = Mapping[str, Any] | None
DAY_MS = 86_400_000


def utc_day(now_ms: int) -> str:
    """``YYYY-MM-DD`` of a UTC instant."""
    return datetime.fromtimestamp(now_ms // 1000, UTC).strftime("%Y-%m-%d")


def day_start_ms(day: str) -> int:
    return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp() * 1000)


def jitter(day: str, *parts: str) -> int:
    """A per-day pseudo-random tie-break (64 bits of SHA-256 of the day and the parts)."""
    return int.from_bytes(hashlib.sha256("|".join((day, *parts)).encode()).digest()[:8], "big")


def top_artists(profile: Profile, day: str, n: int) -> list[str]:
    """The profile's ``n`` best positive artists at the start of ``day``, ties by the day's jitter."""
    if not profile:
        return []
    at = day_start_ms(day)
    scored = [(taste.score(profile, "artists", a, at), a) for a in taste.ranked(profile, "artists")]
    scored.sort(key=lambda sa: (-sa[0], jitter(day, "artist", sa[1]), sa[1]))
    return [a for _, a in scored[:n]]


def _artist_tracks(catalog: CatalogLookup, artist: str, popularity: Mapping[str, int], day: str) -> list[str]:
    canon = {c for c in (catalog.canonical_id(t) for t in catalog.tracks_by_artist(artist)) if c}
    return sorted(canon, key=lambda t: (-popularity.get(t, 0), jitter(day, "track", t), t))


def blend(
    user_a: str,
    profile_a: Profile,
    user_b: str,
    profile_b: Profile,
    catalog: CatalogLookup,
    playable: Callable[[str], bool],
    day: str,
    *,
    popularity: Mapping[str, int] | None = None,
    size: int = 50,
    per_artist: int = 2,
    artists_per_user: int = 10,
) -> list[dict[str, Any]]:
    """The blend's entries for ``user_a`` (the caller) and ``user_b`` on UTC ``day`` (see the module doc)."""
    popularity = popularity or {}
    tops = {user_a: top_artists(profile_a, day, artists_per_user), user_b: top_artists(profile_b, day, artists_per_user)}
    rank = {u: {a: i for i, a in enumerate(t)} for u, t in tops.items()}
    shared = sorted(set(tops[user_a]) & set(tops[user_b]),
                    key=lambda a: (rank[user_a][a] + rank[user_b][a], jitter(day, "shared", a), a))
    per_count: dict[str, int] = {}
    chosen: list[dict[str, Any]] = []
    seen: set[str] = set()

    def take(track: str, users: Sequence[str]) -> bool:
        doc = catalog.track(track) or {}
        artists = list(dict.fromkeys(doc.get("artist_ids") or []))
        if track in seen or not playable(track) or any(per_count.get(a, 0) >= per_artist for a in artists):
            return False
        seen.add(track)
        for a in artists:
            per_count[a] = per_count.get(a, 0) + 1
        chosen.append({"track_id": track, "user_ids": list(users)})
        return True

    for artist in shared:
        for track in _artist_tracks(catalog, artist, popularity, day):
            take(track, (user_a, user_b))
    queues = {u: [t for a in tops[u] if a not in shared for t in _artist_tracks(catalog, a, popularity, day)]
              for u in (user_a, user_b)}
    order = sorted((user_a, user_b), key=lambda u: (jitter(day, "lead", *sorted((user_a, user_b)), u), u))
    cursor = {u: 0 for u in order}
    while len(chosen) < size and any(cursor[u] < len(queues[u]) for u in order):
        for u in order:
            while cursor[u] < len(queues[u]):  # this user's next track that fits
                track = queues[u][cursor[u]]
                cursor[u] += 1
                if take(track, (u,)):
                    break
    return chosen[:size]
