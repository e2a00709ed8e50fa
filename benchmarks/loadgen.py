"""Fast synthetic listening load for benchmarks and the demo: plays of users over a small catalog.

Every play is a ``play.started``, progress events every ``progress_every_ms`` of listening, and a
``play.completed`` or ``play.skipped``. Deterministic for a seed. Events are in-memory dicts
(timestamps as epoch ms), valid per the codec.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

COUNTRIES = ("DE", "FR", "SE", "US", "JP", "BR", "GB", "ES")


def catalog_events(n_tracks: int, start_ms: int, seed: int = 1) -> list[dict]:
    """``track.ingested`` for tracks ``bt00000..`` with two or three rightsholders, rights everywhere."""
    rng = random.Random(seed)
    out = []
    for i in range(n_tracks):
        k = rng.choice((1, 2, 3))
        cuts = sorted(rng.sample(range(1, 1_000_000), k - 1))
        bounds = [0, *cuts, 1_000_000]
        holders = rng.sample(range(50), k)
        out.append({
            "type": "track.ingested", "event_id": f"bt-ing-{i}", "occurred_at": start_ms - 86_400_000,
            "track_id": f"bt{i:05d}", "isrc": f"ZZ-BNC-26-{i:05d}", "title": f"Bench {i}", "album_id": f"ba{i // 10}",
            "artist_ids": [f"bar{i % 97}"], "duration_ms": 180_000, "genres": [rng.choice(("pop", "rock", "jazz"))],
            "explicit": False, "distributor": "bench",
            "rightsholders": [{"rightsholder_id": f"rh{h:02d}", "share_ppm": bounds[j + 1] - bounds[j]}
                              for j, h in enumerate(holders)],
        })
        for c in COUNTRIES:
            out.append({"type": "rights.changed", "event_id": f"bt-r-{i}-{c}", "occurred_at": start_ms - 86_400_000,
                        "track_id": f"bt{i:05d}", "territory": c, "allowed": True, "valid_from": None, "valid_to": None})
    return out


def pool_events(period: str, at_ms: int, amount: int = 1_000_000_000) -> list[dict]:
    return [
        {"type": "royalty.pool_declared", "event_id": f"pool-{period}-{c}-{p}", "occurred_at": at_ms, "period": period,
         "country": c, "product": p, "amount_micros": amount, "currency": "EUR"}
        for c in COUNTRIES for p in ("free", "premium")
    ]


def listening_events(
    n_events: int, *, n_users: int = 20_000, n_tracks: int = 1000, start_ms: int = 1_779_000_000_000,
    seed: int = 7, progress_every_ms: int = 10_000, prefix: str = "b",
) -> Iterator[dict]:
    """About ``n_events`` listening events (whole plays), users interleaved as they would be live."""
    rng = random.Random(seed)
    produced = 0
    play = 0
    t = start_ms
    while produced < n_events:
        user = rng.randrange(n_users)
        uid = f"{prefix}u{user:06d}"
        country = COUNTRIES[user % len(COUNTRIES)]
        product = "premium" if user % 3 else "free"
        track = f"bt{int(rng.paretovariate(1.2)) % n_tracks:05d}"
        pid = f"{prefix}p{seed}-{play:09d}"
        play += 1
        listen = rng.choice((5_000, 25_000, 45_000, 120_000, 180_000))
        base = {"play_id": pid, "user_id": uid, "track_id": track, "country": country, "product": product}
        yield {"type": "play.started", "event_id": f"{pid}-s", "occurred_at": t, **base, "device_id": f"d{user}",
               "context_uri": None, "offline": False}
        produced += 1
        ms = 0
        step = 0
        while ms + progress_every_ms < listen and produced < n_events:
            ms += progress_every_ms
            step += 1
            yield {"type": "play.progress", "event_id": f"{pid}-p{step}", "occurred_at": t + ms, **base,
                   "ms_played": ms, "context_uri": None}
            produced += 1
        end = "play.completed" if listen >= 180_000 else "play.skipped"
        yield {"type": end, "event_id": f"{pid}-e", "occurred_at": t + listen, **base, "ms_played": listen}
        produced += 1
        t += rng.randrange(50, 400)
