"""The recommender (:mod:`processors.recs`) over the replica: lookups, the request's context, shelves as
playable contexts.

Lookups come only from the replica's personalization read interface (``taste_profile``, ``listened``,
``popular``, ``neighbours``) and its catalog methods (``track``, ``canonical_id``, ``tracks_by_artist``,
``tracks_by_genre``, ``is_playable``: rights in the user's market and takedowns), so what backs them can
change without touching this module. Shelves are computed under ``replica.lock`` (one state per
response, as the other routes render).

Context (:func:`context`): country from the user document; device type from the user's active device
(player state, else none); clock: the user's ``utc_offset_min`` when the user document carries one,
else UTC -- for the request and for every play alike (``ranker.Context.local_hour``); recent skips are
read from the profile's history by the ranker; explicit tracks are allowed unless the user document
opts out (``explicit_content.filter_enabled`` true, Spotify's field, or ``allow_explicit`` false; the
users view carries neither today, so everything is allowed).

Shelves as contexts. Each shelf has the playlist id ``recs:<user id>:<shelf id>`` (e.g.
``recs:u1:discover-weekly:2026-W22``, ``recs:u1:daily-mix:1``, ``recs:u1:because:<track>``,
``recs:u1:radio:track:<track>``), served under its public id (playback/ids.py) as
``context_uri = spotify:playlist:<public id>``. ``GET /v1/playlists/{id}`` (and ``/tracks``, ``/items``)
and ``PUT /v1/me/player/play {"context_uri"}`` resolve it through :func:`playlist_state` to a
playlists-fold state owned by ``playlog`` (so edits are refused as for any playlist the caller does not
own); a client that plays from a shelf passes that ``context_uri``, so its ``play.started.context_uri``
names the shelf (decode the id with ``ids.internal_id``). Only the user named in the id resolves it (a
shelf is personal): others get 404. Discover Weekly is resolved for the week its id names.
"""

from __future__ import annotations

import hashlib
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

from playback import render
from playback.ids import public_id
from playback.replica_state import ReplicaState
from processors import taste
from processors.recs import ranker, shelves

SHELF_PREFIX = "recs:"
OWNER = "playlog"
SHELF_SIZE_MAX = 50  # items a shelf shows at most (``limit``); the playable context holds the whole shelf
RADIO_SIZE = 50
NEIGHBOURS_K = 50
_ISO_WEEK = re.compile(r"[0-9]{4}-W(0[1-9]|[1-4][0-9]|5[0-3])")
HOME_TTL_MS = 60_000  # how old the shared lookups behind a cached home may be
HOME_CACHE_USERS = 100_000
KINDS = (  # shelf id prefix -> kind
    ("discover-weekly:", "discover-weekly"), ("daily-mix:", "daily-mix"), ("because:", "because-you-listened"),
    ("for-you", "for-you"), ("popular:", "popular"), ("genre-picks:", "genre-picks"), ("radio:", "radio"),
)


class Neighbours(Mapping):
    """``track -> [(neighbour, score)]`` read lazily from ``replica.neighbours``, the best
    :data:`NEIGHBOURS_K` (as ``similarity.item_item`` keeps), memoized per instance (one computation).
    Iteration and ``len`` cover the tracks read so far (the ranker only calls ``get``)."""

    def __init__(self, replica: ReplicaState):
        self._replica = replica
        self._memo: dict[str, list[tuple[str, float]]] = {}

    def __getitem__(self, track_id: str) -> list[tuple[str, float]]:
        row = self._memo.get(track_id)
        if row is None:
            row = self._memo[track_id] = self._replica.neighbours(track_id)[:NEIGHBOURS_K]
        if not row:
            raise KeyError(track_id)
        return row

    def __iter__(self) -> Iterator[str]:
        return iter([t for t, row in self._memo.items() if row])

    def __len__(self) -> int:
        return sum(1 for row in self._memo.values() if row)


class _Catalog:
    """The replica's catalog methods, memoized for one computation (a shelf reads a track many times)."""

    def __init__(self, replica: ReplicaState):
        self._replica = replica
        self._tracks: dict[str, Mapping[str, Any] | None] = {}
        self._canon: dict[str, str | None] = {}
        self._by_artist: dict[str, list[str]] = {}
        self._by_genre: dict[str, list[str]] = {}

    def track(self, track_id: str) -> Mapping[str, Any] | None:
        if track_id not in self._tracks:
            self._tracks[track_id] = self._replica.track(track_id)
        return self._tracks[track_id]

    def canonical_id(self, track_id: str) -> str | None:
        if track_id not in self._canon:
            self._canon[track_id] = self._replica.canonical_id(track_id)
        return self._canon[track_id]

    def tracks_by_artist(self, artist_id: str) -> list[str]:
        if artist_id not in self._by_artist:
            self._by_artist[artist_id] = self._replica.tracks_by_artist(artist_id)
        return self._by_artist[artist_id]

    def tracks_by_genre(self, genre: str) -> list[str]:
        if genre not in self._by_genre:
            self._by_genre[genre] = self._replica.tracks_by_genre(genre)
        return self._by_genre[genre]


FRIENDS_WALKED = 20  # followed users whose top artists join the candidates
FRIEND_ARTISTS = 3


def followed_artists(replica: ReplicaState, user_id: str) -> list[str]:
    """The follow graph's candidates (``ranker.Lookups.follows``): the artists the user follows, then the
    top artists of the users they follow (one step of a walk on follows), in a deterministic order."""
    out = dict.fromkeys(replica.follows(user_id, "artist"))
    for friend in replica.follows(user_id, "user")[:FRIENDS_WALKED]:
        if friend in replica.erased:
            continue
        out.update(dict.fromkeys(taste.ranked(replica.taste_profile(friend), "artists")[:FRIEND_ARTISTS]))
    return list(out)


def lookups(replica: ReplicaState, user_id: str | None, country: str) -> ranker.Lookups:
    """The ranker's lookups for one computation (call it under ``replica.lock``)."""
    return ranker.Lookups(
        catalog=_Catalog(replica), neighbours=Neighbours(replica), popularity=replica.popular(country),
        rights_check=replica.is_playable,
        listened=replica.listened(user_id) if user_id else frozenset(),
        follows=lambda uid: followed_artists(replica, uid),
    )


def allow_explicit(user: Mapping[str, Any]) -> bool:
    if (user.get("explicit_content") or {}).get("filter_enabled") is True:
        return False
    return user.get("allow_explicit") is not False


def device_type(replica: ReplicaState, user_id: str, user: Mapping[str, Any]) -> str | None:
    """The type of the user's active device (player state), None without one."""
    active = (replica.player_state(user_id) or {}).get("active_device")
    return (render.devices(dict(user)).get(active) or {}).get("device_type") if active else None


def context(replica: ReplicaState, user_id: str, user: Mapping[str, Any], now_ms: int,
            country: str | None = None) -> ranker.Context:
    offset = user.get("utc_offset_min")
    return ranker.Context(
        country=country or user["country"], now_ms=now_ms, device=device_type(replica, user_id, user),
        allow_explicit=allow_explicit(user),
        utc_offset_min=offset if isinstance(offset, int) and not isinstance(offset, bool) else 0,
    )


def kind_of(shelf_id: str) -> str:
    return next((k for prefix, k in KINDS if shelf_id.startswith(prefix)), "shelf")


def playlist_id(user_id: str, shelf_id: str) -> str:
    return f"{SHELF_PREFIX}{user_id}:{shelf_id}"


def context_uri(user_id: str, shelf_id: str) -> str:
    return f"spotify:playlist:{public_id(playlist_id(user_id, shelf_id))}"


class _HomeCache:
    """The users' latest home shelves, reused while nothing personal changed: the key holds the user's
    listening (history length and last entry, listened count), ISO week, hour, device, market and
    explicit setting, so a new play, a new week or another device recomputes at once; what is shared by
    everyone (popularity, neighbours, catalog) may be up to :data:`HOME_TTL_MS` old. Cold starts (no
    history) share one entry per market and explicit setting. Rights and takedowns
    are never cached: rendering re-checks every track (:func:`shelf_object`, :func:`playlist_state`)."""

    def __init__(self, size: int = HOME_CACHE_USERS):
        self.size = size
        self.entries: OrderedDict[str, tuple[tuple, int, list[dict[str, Any]]]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, user_id: str, key: tuple, now_ms: int) -> list[dict[str, Any]] | None:
        with self.lock:
            hit = self.entries.get(user_id)
            if hit is None or hit[0] != key or now_ms - hit[1] >= HOME_TTL_MS or now_ms < hit[1]:
                return None
            self.entries.move_to_end(user_id)
            return hit[2]

    def put(self, user_id: str, key: tuple, now_ms: int, value: list[dict[str, Any]]) -> None:
        with self.lock:
            self.entries[user_id] = (key, now_ms, value)
            self.entries.move_to_end(user_id)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)


_CACHES: weakref.WeakKeyDictionary[ReplicaState, _HomeCache] = weakref.WeakKeyDictionary()


def _cache(replica: ReplicaState) -> _HomeCache:
    cache = _CACHES.get(replica)
    if cache is None:
        cache = _CACHES.setdefault(replica, _HomeCache())
    return cache


def home(replica: ReplicaState, user_id: str, user: Mapping[str, Any], now_ms: int) -> list[dict[str, Any]]:
    """The shelf records (processors.recs.shelves.home) of the user's home now (cached, see
    :class:`_HomeCache`)."""
    ctx = context(replica, user_id, user, now_ms)
    with replica.lock:
        profile = replica.taste_profile(user_id)
        history = (profile or {}).get("history") or []
        listened = replica.listened(user_id)
        follows = tuple(followed_artists(replica, user_id))
        if not history and not listened:  # a cold start: the same page for everyone of the market
            slot, key = f"\0cold:{ctx.country}:{ctx.allow_explicit}", ()
        else:
            slot = user_id
            key = (len(history), tuple(history[-1]) if history else None, len(listened), follows,
                   shelves.iso_week(now_ms), ctx.local_hour(), ctx.device, ctx.country, ctx.allow_explicit)
        cached = _cache(replica).get(slot, key, now_ms)
        if cached is not None:
            return cached
        out = shelves.home(profile, lookups(replica, user_id, ctx.country), ctx)
    _cache(replica).put(slot, key, now_ms, out)
    return out


def radio(replica: ReplicaState, user_id: str, user: Mapping[str, Any], now_ms: int, kind: str,
          seed: str) -> dict[str, Any]:
    """The radio shelf of a canonical track or an artist id (the seed track leads when playable)."""
    ctx = context(replica, user_id, user, now_ms)
    with replica.lock:
        lk = lookups(replica, user_id, ctx.country)
        args = {"seed_track": seed} if kind == "track" else {"seed_artist": seed}
        ids = shelves.radio(lk, ctx, profile=replica.taste_profile(user_id), size=RADIO_SIZE, **args)
        ids = [t for t in ids if replica.is_playable(t, ctx.country, now_ms)]
        if kind == "track":
            title = (replica.track(seed) or {}).get("title") or seed
        else:
            title = (replica.artists.get(seed) or {}).get("name") or seed
    return {"id": f"radio:{kind}:{seed}", "title": f"{title} Radio", "context": {"kind": kind, "ids": [seed]},
            "track_ids": ids}


def resolve(replica: ReplicaState, user_id: str, user: Mapping[str, Any], now_ms: int,
            shelf_id: str) -> dict[str, Any] | None:
    """The shelf record of ``shelf_id`` for the user now (Discover Weekly: for the week it names); None
    when the user has no such shelf."""
    if shelf_id.startswith("discover-weekly:"):
        week = shelf_id.partition(":")[2]
        if not _ISO_WEEK.fullmatch(week):
            return None
        ctx = context(replica, user_id, user, now_ms)
        with replica.lock:
            ids = shelves.discover_weekly(replica.taste_profile(user_id), lookups(replica, user_id, ctx.country),
                                          ctx, week, weights=shelves.WEEKLY_WEIGHTS)
        return {"id": shelf_id, "title": "Discover Weekly", "context": {"kind": "week", "ids": [week]},
                "track_ids": ids} if ids else None
    if shelf_id.startswith("radio:"):
        _, kind, seed = (shelf_id.split(":", 2) + ["", ""])[:3]
        if kind == "track" and (canon := replica.canonical_id(seed)) is not None:
            return radio(replica, user_id, user, now_ms, "track", canon)
        if kind == "artist" and seed in replica.artists:
            return radio(replica, user_id, user, now_ms, "artist", seed)
        return None
    return next((s for s in home(replica, user_id, user, now_ms) if s["id"] == shelf_id), None)


def shelf_object(replica: ReplicaState, base: str, user_id: str, shelf: Mapping[str, Any], market: str,
                 now_ms: int, limit: int) -> dict[str, Any]:
    """The API's shelf: ``id``, ``title``, ``kind``, ``context_uri``, ``context``, ``total`` and ``items``
    (the first ``limit`` track objects)."""
    with replica.lock:
        ids = [t for t in shelf["track_ids"] if replica.is_playable(t, market, now_ms)]
        items = [render.track_object(replica, base, t, market, now_ms) for t in ids[:limit]]
    return {"id": shelf["id"], "title": shelf["title"], "kind": kind_of(shelf["id"]),
            "context_uri": context_uri(user_id, shelf["id"]), "context": shelf["context"], "total": len(ids),
            "items": items}


def playlist_state(replica: ReplicaState, caller: str | None, pid: str, now_ms: int) -> dict | None:
    """A playlists-fold state for ``pid``: the caller's shelf for a ``recs:`` id (None for another user's
    or a missing one), else the replica's playlist."""
    if not pid.startswith(SHELF_PREFIX):
        return replica.playlist_state(pid)
    prefix = f"{SHELF_PREFIX}{caller}:"
    user = replica.users.get(caller) if caller else None
    if not caller or not pid.startswith(prefix) or not user or not user.get("country"):
        return None
    shelf = resolve(replica, caller, user, now_ms, pid[len(prefix):])
    if shelf is None:
        return None
    ids = [t for t in shelf["track_ids"] if replica.is_playable(t, user["country"], now_ms)]
    snapshot = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
    return {"playlist_id": pid, "owner_id": OWNER, "name": shelf["title"], "collaborative": False,
            "public": False, "collaborators": [], "snapshot_id": snapshot, "version": 0, "created_at": None,
            "seen": [], "entries": [{"track_id": t, "added_by": OWNER, "added_at": now_ms} for t in ids]}


def genres(replica: ReplicaState) -> list[str]:
    """Every genre of the catalog with at least one track (the recommendations' genre seeds)."""
    with replica.lock:
        return sorted(g for g, ts in replica.by_genre.items() if ts)
