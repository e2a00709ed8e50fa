"""``playlog batch recs`` on the real broker with no sink running: it loads the DuckDB warehouse from
the topics itself, then publishes view.similar and view.popularity, which read back equal to counts
made here from the events produced; a rerun with an earlier as-of tombstones the tracks that drop out."""

from __future__ import annotations

import math
import random
import subprocess
import sys

import orjson

from core.timefmt import parse_ts
from processors.rules import DAY_MS, MIN_STREAM_MS
from topics.admin import create_topics
from topics.consumer import iter_records
from topics.producer import EventProducer

AS_OF = "2026-06-01T00:00:00Z"
EARLIER = "2026-05-10T00:00:00Z"


def _track(i: int, track_id: str, isrc: str, at: int) -> dict:
    return {"type": "track.ingested", "event_id": f"ti-{track_id}", "occurred_at": at + i, "track_id": track_id,
            "isrc": isrc, "title": f"Song {i}", "album_id": "al1", "artist_ids": ["ar1"], "duration_ms": 200_000,
            "genres": ["pop"], "explicit": False, "distributor": "d1",
            "rightsholders": [{"rightsholder_id": "rh1", "share_ppm": 1_000_000}]}


def _play(n: int, user: str, track: str, country: str, at: int, ms: int) -> list[dict]:
    common = {"play_id": f"p{n}", "user_id": user, "track_id": track, "country": country, "product": "premium"}
    return [
        {"type": "play.started", "event_id": f"s{n}", "occurred_at": at, **common, "device_id": f"d-{user}",
         "context_uri": None, "offline": False},
        {"type": "play.completed", "event_id": f"c{n}", "occurred_at": at + ms, **common, "ms_played": ms},
    ]


def _documents(settings, topic: str) -> dict[str, dict | None]:
    """The latest value per key of a view topic (None: a tombstone)."""
    out: dict[str, dict | None] = {}
    for r in iter_records(settings, [settings.topic_prefix + topic]):
        out[r.key.decode()] = None if r.value is None else orjson.loads(r.value)
    return out


def _batch(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "playlog", "batch", "recs", *args], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_batch_recs_publishes_neighbours_and_popularity_from_the_topics(kafka_env) -> None:
    settings = kafka_env
    create_topics(settings)
    as_of, earlier = parse_ts(AS_OF), parse_ts(EARLIER)
    rnd = random.Random(5)
    tracks = [f"t{i}" for i in range(8)]
    events = [_track(i, t, f"ISRC{i}", as_of - 200 * DAY_MS) for i, t in enumerate(tracks)]
    events.append(_track(99, "t0-again", "ISRC0", as_of - 100 * DAY_MS))  # a later upload of t0's ISRC: alias
    # what this test expects, counted as the events are made
    listeners: dict[str, set[str]] = {}
    total: dict[str, int] = {}
    window: dict[str, dict[str, int]] = {}
    n = 0
    for u in range(30):
        user = f"u{u}"
        for _ in range(6):
            track = rnd.choice([*tracks[:6], "t0-again"])  # t6, t7: ingested, never played
            if track in ("t4", "t5"):  # played only after EARLIER: they drop out of an earlier run
                at = earlier + rnd.randint(1, 20) * DAY_MS
            else:
                at = as_of - rnd.randint(1, 60) * DAY_MS
            ms = rnd.choice([10_000, MIN_STREAM_MS, 180_000])
            country = rnd.choice(["SE", "DE"])
            events += _play(n, user, track, country, at, ms)
            n += 1
            canon = "t0" if track == "t0-again" else track
            if ms >= MIN_STREAM_MS:
                listeners.setdefault(user, set()).add(canon)
                total[canon] = total.get(canon, 0) + 1
                if at >= as_of - 28 * DAY_MS:
                    window.setdefault(canon, {})[country] = window.setdefault(canon, {}).get(country, 0) + 1
    events += _play(n, "u0", "t1", "SE", as_of + DAY_MS, 100_000)  # after as-of: counts for nothing
    producer = EventProducer(settings)
    for ev in events:
        producer.produce(ev)
    producer.flush()

    out = _batch("--as-of", AS_OF)
    assert f"synced {len(events)} records" in out

    pop = _documents(settings, "view.popularity")
    assert set(pop) == set(total)
    for t, doc in pop.items():
        assert doc == {"track_id": t, "streams": total[t], "by_country": dict(sorted(window.get(t, {}).items())),
                       "days": 28, "as_of": as_of}

    sim = _documents(settings, "view.similar")
    # cosine over the listener sets, counted here: c / sqrt(n_a n_b)
    n_of = {t: sum(t in s for s in listeners.values()) for t in total}
    assert set(sim) == {t for t in total if any(t in s and len(s) > 1 for s in listeners.values())}
    for a, doc in sim.items():
        want = []
        for b in sorted(n_of):
            c = sum(a in s and b in s for s in listeners.values())
            if b != a and c:
                want.append((b, c / math.sqrt(n_of[a] * n_of[b]), c * c / n_of[b]))
        want.sort(key=lambda x: (-x[2], x[0]))
        assert doc["track_id"] == a and doc["as_of"] == as_of
        assert [b for b, _ in doc["neighbours"]] == [b for b, _, _ in want]
        assert [s for _, s in doc["neighbours"]] == [s for _, s, _ in want]

    # an earlier as-of: t4 and t5 had no stream yet, so their documents are tombstoned
    out = _batch("--as-of", EARLIER, "--days", "7")
    assert "synced 0 records" in out
    pop2 = _documents(settings, "view.popularity")
    assert pop2["t4"] is None and pop2["t5"] is None
    assert {t for t, d in pop2.items() if d is not None} == set(total) - {"t4", "t5"}
    assert all(d["as_of"] == earlier and d["days"] == 7 for d in pop2.values() if d is not None)
    sim2 = _documents(settings, "view.similar")
    assert sim2["t4"] is None and sim2["t5"] is None
    assert all(b not in ("t4", "t5") for d in sim2.values() if d for b, _ in d["neighbours"])
