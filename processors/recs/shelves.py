"""Shelves built from a taste profile, :class:`~.ranker.Lookups` and a :class:`~.ranker.Context`.

- :func:`for_you`: the ranker's top new-to-user picks (the home's first shelf);
- :func:`discover_weekly`: new-to-user tracks, a pure function of (profile, lookups, iso_week): the
  ranking gets a per-(user, week, track) jitter from SHA-256, so it is frozen within an ISO week and
  differs the next;
- :func:`daily_mixes`: the user's taste clustered by top genre (a genre whose artists are all in an
  earlier cluster joins it), one mix each: familiar tracks (not recently played) and new ones;
- :func:`because_you_listened`: CF neighbours of a recent track X;
- :func:`radio`: from a seed track or artist;
- :func:`recommend`: Spotify's /v1/recommendations semantics (1..5 seeds of tracks/artists/genres,
  limit 1..100, market);
- :func:`home`: the shelves in page order; the cold start (no profile) is popular in the country,
  then genre picks (each genre's most popular tracks); with a history no popularity shelf (popularity
  is one term of the ranker).

Shelf record: ``{"id", "title", "context": {"kind", "ids"}, "track_ids"}`` (as processors/home.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from processors.recs.ranker import (
    Context,
    Lookups,
    Page,
    Taste,
    Weights,
    by_popularity,
    candidates,
    cf_scores,
    rank,
    read_taste,
    select,
)

Profile = Mapping[str, Any] | None
SEEDED_WEIGHTS = Weights(
    artist=0.2, genre=0.05
)  # shelves about a seed: the user's taste only breaks near-ties
# Discover Weekly ignores the request's hour and device, so it is the same all week for the same taste
WEEKLY_WEIGHTS = Weights(daypart=0.0, lean_back=1.0)


def iso_week(now_ms: int) -> str:
    """``YYYY-Www`` of a UTC instant."""
    y, w, _ = datetime.fromtimestamp(now_ms / 1000, UTC).isocalendar()
    return f"{y}-W{w:02d}"


def _shelf(shelf_id: str, title: str, kind: str, ids: Sequence[str], tracks: list[str]) -> dict[str, Any]:
    return {"id": shelf_id, "title": title, "context": {"kind": kind, "ids": list(ids)}, "track_ids": tracks}


def _jitter(user: str, week: str, track: str) -> float:
    h = hashlib.sha256(f"{user}|{week}|{track}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def for_you(
    profile: Profile, lookups: Lookups, ctx: Context, size: int = 10, page: Page | None = None
) -> list[str]:
    t = read_taste(profile, lookups.catalog, ctx)
    if not t.recent and not t.artists:
        return cold_start(lookups, ctx, size, page=page)
    ids, cf = candidates(t, lookups)
    return select(
        [x for x, _ in rank(ids, t, lookups, ctx, cf)], t, lookups, ctx, size, new_only=True, page=page
    )


def discover_weekly(
    profile: Profile,
    lookups: Lookups,
    ctx: Context,
    week: str,
    size: int = 30,
    *,
    jitter: float = 0.1,
    page: Page | None = None,
    weights: Weights | None = None,
) -> list[str]:
    t = read_taste(profile, lookups.catalog, ctx)
    if not t.recent and not t.artists:
        return []
    ids, cf = candidates(t, lookups)
    user = t.user_id or ""
    extra = {x: jitter * _jitter(user, week, x) for x in ids}
    ranked = rank(ids, t, lookups, ctx, cf, extra=extra, weights=weights or Weights())
    return select([x for x, _ in ranked], t, lookups, ctx, size, new_only=True, page=page)


def _clusters(
    t: Taste, lookups: Lookups, profile: Mapping[str, Any], n: int
) -> list[tuple[list[str], set[str]]]:
    """(genres, artists) per cluster: the user's artists grouped by the top genres they play."""
    artist_genres: dict[str, set[str]] = {}
    for e in profile["history"]:
        doc = lookups.catalog.track(lookups.catalog.canonical_id(e[2]) or e[2])
        for a in (doc or {}).get("artist_ids") or []:
            if a in t.artists:
                artist_genres.setdefault(a, set()).update(doc.get("genres") or [])  # type: ignore[union-attr]
    out: list[tuple[list[str], set[str]]] = []
    for g in sorted(t.genres, key=lambda g: (-t.genres[g], g)):
        artists = {a for a, gs in artist_genres.items() if g in gs}
        home = next((c for c in out if artists and artists <= c[1]), None)
        if home is not None:
            home[0].append(g)
        elif len(out) < n:
            out.append(([g], artists))
    return out


def daily_mixes(
    profile: Profile, lookups: Lookups, ctx: Context, n: int = 3, size: int = 20, page: Page | None = None
) -> list[dict[str, Any]]:
    if not profile:
        return []
    t = read_taste(profile, lookups.catalog, ctx)
    ids, cf = candidates(t, lookups, per_genre=400)
    ranked = [x for x, _ in rank(ids, t, lookups, ctx, cf)]
    mixes = []
    for i, (genres, artists) in enumerate(_clusters(t, lookups, profile, n), start=1):
        gs = set(genres)
        pool = [
            x
            for x in ranked
            if (doc := lookups.catalog.track(x))
            and (gs & set(doc.get("genres") or []) or artists & set(doc.get("artist_ids") or []))
        ]
        familiar = [x for x in pool if x in lookups.listened]
        new = [x for x in pool if x not in lookups.listened]
        blend = [x for pair in zip(familiar, new, strict=False) for x in pair]
        rest = familiar[len(blend) // 2 :] + new[len(blend) // 2 :]
        tracks = select(blend + rest, t, lookups, ctx, size, page=page)
        if tracks:
            mixes.append(_shelf(f"daily-mix:{i}", f"Daily Mix {i}", "genre", genres, tracks))
    return mixes


def because_you_listened(
    profile: Profile, lookups: Lookups, ctx: Context, seed: str, size: int = 10, page: Page | None = None
) -> dict[str, Any] | None:
    t = read_taste(profile, lookups.catalog, ctx)
    canon = lookups.catalog.canonical_id(seed) or seed
    cf = cf_scores([canon], lookups)
    extra = {x: 2.0 * s for x, s in cf.items()}  # the seed's neighbours first; taste breaks near-ties
    ranked = rank(list(cf), t, lookups, ctx, cf, extra=extra, weights=SEEDED_WEIGHTS)
    tracks = select([x for x, _ in ranked], t, lookups, ctx, size, new_only=True, exclude=[canon], page=page)
    if not tracks:
        return None
    doc = lookups.catalog.track(canon) or {}
    return _shelf(
        f"because:{canon}", f"Because you listened to {doc.get('title') or canon}", "track", [canon], tracks
    )


def _seed_pool(
    lookups: Lookups, seed_tracks: Sequence[str], seed_artists: Sequence[str], seed_genres: Sequence[str]
) -> tuple[dict[str, float], dict[str, int]]:
    """Seed similarity per candidate (CF of seed tracks and of seed artists' top tracks, same artist,
    same genre), and each seed's pool size."""
    sim: dict[str, float] = {}
    sizes: dict[str, int] = {}

    def add(x: str, v: float) -> None:
        sim[x] = sim.get(x, 0.0) + v

    for s in seed_tracks:
        canon = lookups.catalog.canonical_id(s) or s
        row = lookups.neighbours.get(canon) or ()
        for b, v in row:
            add(b, 2.0 * v)
        doc = lookups.catalog.track(canon) or {}
        same = [x for a in doc.get("artist_ids") or [] for x in lookups.catalog.tracks_by_artist(a)]
        for x in same:
            add(x, 0.3)
        sizes[s] = len(row) + len(same)
    for a in seed_artists:
        own = by_popularity(lookups.catalog.tracks_by_artist(a), lookups.popularity)
        for x in own:
            add(x, 0.5)
        n = len(own)
        for top in own[:5]:
            for b, v in lookups.neighbours.get(top) or ():
                add(b, v)
                n += 1
        sizes[a] = n
    for g in seed_genres:
        pool = by_popularity(lookups.catalog.tracks_by_genre(g), lookups.popularity)[:500]
        for i, x in enumerate(pool):
            add(x, 0.3 * (1 - i / 500))
        sizes[g] = len(pool)
    return sim, sizes


def radio(
    lookups: Lookups,
    ctx: Context,
    *,
    seed_track: str | None = None,
    seed_artist: str | None = None,
    profile: Profile = None,
    size: int = 50,
) -> list[str]:
    """A station from one seed (track or artist), personalized by the profile when given. The seed track
    leads; the rest are new to the user when a profile is given."""
    if (seed_track is None) == (seed_artist is None):
        raise ValueError("radio needs exactly one of seed_track, seed_artist")
    t = read_taste(profile, lookups.catalog, ctx)
    sim, _ = _seed_pool(lookups, [seed_track] if seed_track else [], [seed_artist] if seed_artist else [], [])
    cf = cf_scores(t.recent[:10], lookups) if profile else {}
    ranked = [x for x, _ in rank(list(sim), t, lookups, ctx, cf, extra=sim)]
    lead = [lookups.catalog.canonical_id(seed_track) or seed_track] if seed_track else []
    body = select(ranked, t, lookups, ctx, size - len(lead), new_only=profile is not None, exclude=lead)
    return lead + body


def recommend(
    lookups: Lookups,
    ctx: Context,
    seed_tracks: Sequence[str] = (),
    seed_artists: Sequence[str] = (),
    seed_genres: Sequence[str] = (),
    limit: int = 20,
    market: str | None = None,
) -> dict[str, Any]:
    """Like Spotify's ``GET /v1/recommendations``: 1..5 seeds in total, ``limit`` 1..100 (default 20),
    tracks playable in ``market`` (default: the context's country), seeds themselves excluded.
    Returns ``{"tracks": [ids], "seeds": [{"id", "type", "initialPoolSize", "afterFilteringSize"}]}``."""
    n = len(seed_tracks) + len(seed_artists) + len(seed_genres)
    if not 1 <= n <= 5:
        raise ValueError("recommendations need 1 to 5 seeds (tracks, artists and genres together)")
    if not 1 <= limit <= 100:
        raise ValueError("limit must be between 1 and 100")
    if market:
        ctx = dataclasses.replace(ctx, country=market)
    t = read_taste(None, lookups.catalog, ctx)
    sim, sizes = _seed_pool(lookups, seed_tracks, seed_artists, seed_genres)
    seeds = {lookups.catalog.canonical_id(s) or s for s in seed_tracks}
    ranked = [x for x, _ in rank(list(sim), t, lookups, ctx, {}, extra=sim)]
    tracks = select(ranked, t, lookups, ctx, limit, fresh=False, exclude=seeds)
    passing = [x for x in ranked if x not in seeds and lookups.rights_check(x, ctx.country, ctx.now_ms)]
    seed_info = [
        {
            "id": s,
            "type": kind,
            "initialPoolSize": sizes.get(s, 0),
            "afterFilteringSize": min(sizes.get(s, 0), len(passing)),
        }
        for kind, group in (("TRACK", seed_tracks), ("ARTIST", seed_artists), ("GENRE", seed_genres))
        for s in group
    ]
    return {"tracks": tracks, "seeds": seed_info}


def cold_start(lookups: Lookups, ctx: Context, size: int = 10, *, page: Page | None = None) -> list[str]:
    """Popular in the country (by streams there, ties by id), filtered as every shelf."""
    t = read_taste(None, lookups.catalog, ctx)
    popular = by_popularity((x for x, n in lookups.popularity.items() if n > 0), lookups.popularity)
    return select(popular, t, lookups, ctx, size, page=page)


def genre_picks(
    lookups: Lookups, ctx: Context, genres: int = 3, size: int = 10, page: Page | None = None
) -> list[dict[str, Any]]:
    """Each of the country's most streamed genres: its most popular tracks."""
    t = read_taste(None, lookups.catalog, ctx)
    order: dict[str, int] = {}
    for x, n in lookups.popularity.items():
        for g in (lookups.catalog.track(x) or {}).get("genres") or []:
            order[g] = order.get(g, 0) + n
    out = []
    for g in sorted(order, key=lambda g: (-order[g], g))[:genres]:
        tracks = select(
            by_popularity(lookups.catalog.tracks_by_genre(g), lookups.popularity),
            t,
            lookups,
            ctx,
            size,
            page=page,
        )
        if tracks:
            out.append(_shelf(f"genre-picks:{g}", f"Popular {g}", "genre", [g], tracks))
    return out


def home(
    profile: Profile, lookups: Lookups, ctx: Context, *, because: int = 2, mixes: int = 3
) -> list[dict[str, Any]]:
    """The home page: for-you, Discover Weekly, Because you listened to X (the most recent seeds),
    Daily Mixes; the cold start is popular in the country then genre picks. With a history, popularity
    is one signal of the ranker, not a shelf of its own. A track appears once per page: Discover Weekly
    is filled first (with :data:`WEEKLY_WEIGHTS`, so neither the page nor the request's hour or device
    changes it within a week: a pure function of taste, listened set, lookups and ISO week), then the
    shelves in page order, each skipping what an earlier one took."""
    page = Page()
    t = read_taste(profile, lookups.catalog, ctx)
    shelves: list[dict[str, Any]] = []
    if not t.recent and not t.artists:
        pop = cold_start(lookups, ctx, page=page)
        if pop:
            shelves.append(
                _shelf(f"popular:{ctx.country}", f"Popular in {ctx.country}", "country", [ctx.country], pop)
            )
        return shelves + genre_picks(lookups, ctx, page=page)
    week = iso_week(ctx.now_ms)
    dw = discover_weekly(profile, lookups, ctx, week, page=page, weights=WEEKLY_WEIGHTS)
    picks = for_you(profile, lookups, ctx, page=page)
    if picks:
        shelves.append(_shelf("for-you", "Picked for you", "user", [t.user_id or ""], picks))
    if dw:
        shelves.append(_shelf(f"discover-weekly:{week}", "Discover Weekly", "week", [week], dw))
    for seed in t.recent[:because]:
        shelf = because_you_listened(profile, lookups, ctx, seed, page=page)
        if shelf:
            shelves.append(shelf)
    shelves += daily_mixes(profile, lookups, ctx, n=mixes, page=page)
    return shelves
