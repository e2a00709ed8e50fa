"""Home shelves: a pure function of a taste profile and read-only lookups.

:func:`home_shelves` builds, in this order (each shelf omitted when empty):

1. ``top-artists`` -- tracks of the user's top artists (positive affinity), artist by artist, each
   artist's tracks by popularity in the country;
2. ``genre:<g>`` -- for each top genre, its tracks by popularity;
3. ``also:<X>`` -- for the most recent history tracks X, "listeners who streamed X also streamed":
   co-occurring tracks by listener count;
4. ``popular:<country>`` -- tracks popular in the user's country (the cold-start shelf: for a user
   without a profile it is the only one).

Every shelf keeps only tracks the catalog knows (canonical ids), playable per ``rights_check(track,
country, now_ms)`` (rights and takedowns), not in the user's recent history, by no artist the user
dislikes (negative affinity), at most ``max_per_artist`` per artist (a track counts for each of its
artists), never twice on the page (earlier shelves win). All orderings break ties by id, so the
result is deterministic.

Shelf record: ``{"id", "title", "context": {"kind": "artists"|"genre"|"track"|"country", "ids": [...]},
"track_ids": [...]}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from processors import taste

RightsCheck = Callable[[str, str, int], bool]


class CatalogLookup(Protocol):
    def track(self, track_id: str) -> Mapping[str, Any] | None:
        """The canonical track document (needs ``track_id``, ``artist_ids``) or None."""

    def canonical_id(self, track_id: str) -> str | None: ...

    def tracks_by_artist(self, artist_id: str) -> Sequence[str]: ...

    def tracks_by_genre(self, genre: str) -> Sequence[str]: ...


@dataclass
class DictCatalog:
    """An in-memory :class:`CatalogLookup` over canonical track documents (``catalog.to_view`` /
    search documents: ``track_id`` or ``id``, ``artist_ids``, ``genres``), plus an alias map."""

    tracks: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # alias id -> canonical id
    _by_artist: dict[str, list[str]] = field(default_factory=dict, init=False, repr=False)
    _by_genre: dict[str, list[str]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for tid in sorted(self.tracks):
            doc = self.tracks[tid]
            for a in dict.fromkeys(doc.get("artist_ids") or []):
                self._by_artist.setdefault(a, []).append(tid)
            for g in dict.fromkeys(doc.get("genres") or []):
                self._by_genre.setdefault(g, []).append(tid)

    @classmethod
    def from_documents(
        cls, docs: Iterable[Mapping[str, Any]], aliases: Mapping[str, str] | None = None
    ) -> DictCatalog:
        return cls({d.get("track_id") or d["id"]: d for d in docs}, dict(aliases or {}))

    def track(self, track_id: str) -> Mapping[str, Any] | None:
        return self.tracks.get(track_id)

    def canonical_id(self, track_id: str) -> str | None:
        if track_id in self.tracks:
            return track_id
        return self.aliases.get(track_id)

    def tracks_by_artist(self, artist_id: str) -> Sequence[str]:
        return self._by_artist.get(artist_id, [])

    def tracks_by_genre(self, genre: str) -> Sequence[str]:
        return self._by_genre.get(genre, [])


def _by_popularity(track_ids: Iterable[str], popularity: Mapping[str, int]) -> list[str]:
    return sorted(set(track_ids), key=lambda t: (-popularity.get(t, 0), t))


def home_shelves(
    profile: Mapping[str, Any] | None,
    catalog_lookup: CatalogLookup,
    rights_check: RightsCheck,
    popularity: Mapping[str, int],
    cooccurrence: Mapping[str, Mapping[str, int]],
    country: str,
    now_ms: int,
    *,
    shelf_size: int = 10,
    max_per_artist: int = 2,
    top_artists: int = 5,
    top_genres: int = 2,
    seeds: int = 2,
    taste_config: taste.TasteConfig = taste.DEFAULT_CONFIG,
) -> list[dict[str, Any]]:
    """The user's home shelves (see the module docstring).

    ``popularity``: track_id -> streams in ``country`` (e.g. from ``taste.evolve_popularity`` states).
    ``cooccurrence``: track_id -> {other track_id: listeners} (``taste.evolve_pairs`` states' counts).
    ``profile``: a ``taste`` profile or None (cold start), built with ``taste_config``. ``now_ms`` is only
    passed to ``rights_check``.
    """
    recent_raw = taste.recent_tracks(profile)
    recent = set(recent_raw) | {c for t in recent_raw if (c := catalog_lookup.canonical_id(t))}
    disliked = taste.disliked(profile, "artists", taste_config)
    used: set[str] = set()
    shelves: list[dict[str, Any]] = []

    def fill(candidates: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
        picked: list[str] = []
        per_artist: dict[str, int] = {}
        skip = recent | used | set(exclude)
        for raw in candidates:
            tid = catalog_lookup.canonical_id(raw)
            if tid is None or tid in skip or tid in picked:
                continue
            doc = catalog_lookup.track(tid)
            if doc is None:
                continue
            artists = list(dict.fromkeys(doc.get("artist_ids") or []))
            if any(a in disliked for a in artists):
                continue
            if any(per_artist.get(a, 0) >= max_per_artist for a in artists):
                continue
            if not rights_check(tid, country, now_ms):
                continue
            picked.append(tid)
            for a in artists:
                per_artist[a] = per_artist.get(a, 0) + 1
            if len(picked) >= shelf_size:
                break
        return picked

    def add(shelf_id: str, title: str, kind: str, ids: list[str], tracks: list[str]) -> None:
        if tracks:
            used.update(tracks)
            shelves.append(
                {"id": shelf_id, "title": title, "context": {"kind": kind, "ids": ids}, "track_ids": tracks}
            )

    artists = taste.ranked(profile, "artists", config=taste_config)[:top_artists]
    if artists:
        candidates = [
            t for a in artists for t in _by_popularity(catalog_lookup.tracks_by_artist(a), popularity)
        ]
        add("top-artists", "From your top artists", "artists", artists, fill(candidates))
    for genre in taste.ranked(profile, "genres", config=taste_config)[:top_genres]:
        candidates = _by_popularity(catalog_lookup.tracks_by_genre(genre), popularity)
        add(f"genre:{genre}", f"More {genre}", "genre", [genre], fill(candidates))
    seeded = 0
    for seed in recent_raw:
        if seeded >= seeds:
            break
        canon = catalog_lookup.canonical_id(seed) or seed
        counts = cooccurrence.get(canon) or cooccurrence.get(seed) or {}
        if not counts:
            continue
        seeded += 1
        candidates = [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        doc = catalog_lookup.track(canon)
        title = (
            f"Listeners of {doc.get('title') or canon} also streamed"
            if doc
            else f"Listeners of {canon} also streamed"
        )
        add(f"also:{canon}", title, "track", [canon], fill(candidates, exclude=[canon]))
    popular = _by_popularity((t for t, n in popularity.items() if n > 0), popularity)
    add(f"popular:{country}", f"Popular in {country}", "country", [country], fill(popular))
    return shelves
