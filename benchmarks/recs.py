"""``playlog bench recs``: offline evaluation of the recommender on a synthetic population with planted
tastes.

Population: genres grouped into clusters; each artist plays one genre, each track is by one artist;
tracks have a Zipf popularity. Each user has a planted mix of 1-3 clusters and a few favourite
artists in them; a play picks a cluster by the mix, then a favourite artist (40%) or an artist of the
cluster by popularity, then a track of the artist by popularity; 10% of plays are globally popular
noise, half of them skipped. Plays are spread over 8 weeks: the earlier 80% of each user's plays
train (taste profiles, item-item similarity, popularity), the later 20% are held out. Relevant items:
held-out streamed tracks the user never streamed in training (every method recommends new-to-user
tracks only). Metrics: hit rate@10 (share of users with at least one relevant track in their top 10)
and NDCG@10 (binary relevance). Pure CPU; deterministic for a given seed.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from processors import home, taste
from processors.recs import ranker, shelves, similarity

DAY_MS = 86_400_000
T0 = 1_780_000_000_000
COUNTRY = "DE"


@dataclass
class Population:
    catalog: home.DictCatalog
    train: dict[str, list[dict[str, Any]]]  # user -> signals (time order)
    held: dict[str, set[str]]  # user -> relevant held-out tracks
    split_ms: int
    planted: dict[str, dict[int, float]] = field(default_factory=dict)


def _zipf(n: int, s: float = 0.9) -> list[float]:
    return [1.0 / (i + 1) ** s for i in range(n)]


def synthesize(
    users: int,
    tracks: int,
    seed: int,
    *,
    plays: int = 80,
    clusters: int = 8,
    genres_per: int = 3,
    train_share: float = 0.8,
) -> Population:
    rng = random.Random(seed)
    genres = [f"g{c}.{j}" for c in range(clusters) for j in range(genres_per)]
    n_artists = max(len(genres), tracks // 10)
    artist_genre = {f"a{i:05d}": genres[i % len(genres)] for i in range(n_artists)}
    docs: dict[str, dict[str, Any]] = {}
    by_artist: dict[str, list[str]] = {a: [] for a in artist_genre}
    artist_ids = sorted(artist_genre)
    for i in range(tracks):
        a = artist_ids[i % n_artists]
        tid = f"t{i:06d}"
        docs[tid] = {
            "track_id": tid,
            "title": tid,
            "artist_ids": [a],
            "genres": [artist_genre[a]],
            "explicit": i % 7 == 0,
        }
        by_artist[a].append(tid)
    # popularity: a random permutation of Zipf weights over artists, and within each artist
    aw = _zipf(n_artists)
    rng.shuffle(aw)
    artist_w = dict(zip(artist_ids, aw, strict=True))
    cluster_artists = {
        c: [a for a in artist_ids if artist_genre[a].startswith(f"g{c}.")] for c in range(clusters)
    }
    cluster_cum = {
        c: list(itertools.accumulate(artist_w[a] for a in cluster_artists[c])) for c in range(clusters)
    }
    track_cum = {a: list(itertools.accumulate(_zipf(len(ts), 1.1))) for a, ts in by_artist.items()}
    tw = _zipf(tracks, 1.0)
    rng.shuffle(tw)
    all_ids = sorted(docs)
    global_cum = list(itertools.accumulate(tw))
    train: dict[str, list[dict[str, Any]]] = {}
    held: dict[str, set[str]] = {}
    planted: dict[str, dict[int, float]] = {}
    span = 56 * DAY_MS
    for u in range(users):
        uid = f"u{u:05d}"
        cs = rng.sample(range(clusters), rng.choice((1, 2, 2, 3)))
        mix = [rng.random() + 0.2 for _ in cs]
        planted[uid] = {c: m / sum(mix) for c, m in zip(cs, mix, strict=True)}
        favs = {c: rng.choices(cluster_artists[c], cum_weights=cluster_cum[c], k=3) for c in cs}
        times = sorted(rng.randrange(span) for _ in range(plays))
        sigs = []
        for n, dt in enumerate(times):
            kind = "stream"
            if rng.random() < 0.1:
                tid = rng.choices(all_ids, cum_weights=global_cum)[0]
                kind = "skip" if rng.random() < 0.5 else "stream"
            else:
                c = rng.choices(cs, weights=mix)[0]
                a = (
                    rng.choice(favs[c])
                    if rng.random() < 0.4
                    else rng.choices(cluster_artists[c], cum_weights=cluster_cum[c])[0]
                )
                tid = rng.choices(by_artist[a], cum_weights=track_cum[a])[0] if by_artist[a] else all_ids[0]
            d = docs[tid]
            sigs.append(
                {
                    "event_id": f"{uid}:{n}",
                    "user_id": uid,
                    "track_id": tid,
                    "artist_ids": d["artist_ids"],
                    "genres": d["genres"],
                    "kind": kind,
                    "at": T0 + dt,
                    "country": COUNTRY,
                }
            )
        cut = int(len(sigs) * train_share)
        train[uid] = sigs[:cut]
        seen = {s["track_id"] for s in sigs[:cut] if s["kind"] == "stream"}
        rel = {s["track_id"] for s in sigs[cut:] if s["kind"] == "stream"} - seen
        if rel:
            held[uid] = rel
    return Population(home.DictCatalog(docs), train, held, T0 + int(span * train_share), planted)


def evaluate(
    recs: Mapping[str, Sequence[str]], held: Mapping[str, set[str]], k: int = 10
) -> tuple[float, float]:
    """(hit rate@k, NDCG@k) over the users of ``held`` (a user without recommendations scores 0)."""
    if not held:
        return 0.0, 0.0
    hits = 0
    ndcg = 0.0
    for user, rel in held.items():
        top = list(recs.get(user, ()))[:k]
        gains = [1.0 / math.log2(i + 2) for i, t in enumerate(top) if t in rel]
        hits += bool(gains)
        ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(rel))))
        ndcg += sum(gains) / ideal
    return hits / len(held), ndcg / len(held)


def run(users: int = 1000, tracks: int = 4000, seed: int = 7, k: int = 10) -> dict[str, Any]:
    t0 = time.perf_counter()
    pop = synthesize(users, tracks, seed)
    cfg = taste.TasteConfig(dedupe_window=4)
    profiles: dict[str, Any] = {}
    listened: dict[str, set[str]] = {}
    popularity: dict[str, int] = {}
    for uid, sigs in pop.train.items():
        p = None
        for s in sigs:
            p, _ = taste.evolve(p, s, cfg)
            if s["kind"] == "stream":
                popularity[s["track_id"]] = popularity.get(s["track_id"], 0) + 1
        profiles[uid] = p
        listened[uid] = {s["track_id"] for s in sigs if s["kind"] == "stream"}
    t_fold = time.perf_counter()
    counts, listeners = similarity.cooccurrence(listened)
    neighbours = similarity.from_cooccurrence(counts, listeners, k=50)
    t_sim = time.perf_counter()
    ctx = ranker.Context(COUNTRY, pop.split_ms)
    week = shelves.iso_week(pop.split_ms)
    rng = random.Random(seed + 1)
    catalog_ids = sorted(pop.catalog.tracks)
    popular = sorted(popularity, key=lambda t: (-popularity[t], t))
    methods: dict[str, dict[str, list[str]]] = {
        m: {}
        for m in (
            "random",
            "popularity",
            "home (processors/home.py)",
            "home: for-you",
            "discover weekly",
            "radio",
        )
    }
    for uid in sorted(pop.held):
        seen = listened[uid]
        lookups = ranker.Lookups(pop.catalog, neighbours, popularity, listened=seen)
        methods["random"][uid] = [t for t in rng.sample(catalog_ids, k + len(seen)) if t not in seen][:k]
        methods["popularity"][uid] = [t for t in popular if t not in seen][:k]
        old = home.home_shelves(
            profiles[uid],
            pop.catalog,
            lambda *_: True,
            popularity,
            counts,
            COUNTRY,
            pop.split_ms,
            taste_config=cfg,
        )
        methods["home (processors/home.py)"][uid] = [t for s in old for t in s["track_ids"] if t not in seen][
            :k
        ]
        methods["home: for-you"][uid] = shelves.for_you(profiles[uid], lookups, ctx, size=k)
        methods["discover weekly"][uid] = shelves.discover_weekly(profiles[uid], lookups, ctx, week, size=k)
        t_ = ranker.read_taste(profiles[uid], pop.catalog, ctx)
        methods["radio"][uid] = (
            shelves.radio(lookups, ctx, seed_track=t_.recent[0], profile=profiles[uid], size=k + 1)[1:]
            if t_.recent
            else []
        )
    t_eval = time.perf_counter()
    scores = {m: evaluate(r, pop.held, k) for m, r in methods.items()}
    base = scores["popularity"][0] or 1e-12
    results: dict[str, Any] = {
        "users": users,
        "tracks": tracks,
        "seed": seed,
        "users_evaluated": len(pop.held),
    }
    for m, (hit, ndcg) in scores.items():
        results[f"{m} hit@{k}"] = hit
        results[f"{m} ndcg@{k}"] = ndcg
        results[f"{m} hit ratio to popularity"] = hit / base
    results.update(
        {
            "fold_s": t_fold - t0,
            "similarity_s": t_sim - t_fold,
            "eval_s": t_eval - t_sim,
            "total_s": t_eval - t0,
        }
    )
    results["_table"] = [(m, h, n, h / base) for m, (h, n) in scores.items()]
    return results
