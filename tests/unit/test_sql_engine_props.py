"""The sql engine (DuckDB) and the fold engine (processors.royalties) give identical statements on
random event sets full of edge cases: duplicates, shuffled order, plays at 29,999 / 30,000 ms,
rights windows and blocks, takedowns, alias uploads with changed shares, loop farms, impossible
listening, pools declared twice, plays without a play.started; plus invalid lines that both must
ignore. Every source form is checked: JSON Lines (codec-validated and SQL-validated) and Parquet.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import orjson
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.timefmt import parse_ts
from processors import royalties
from replay.sql_engine import compute
from schemas.codec import default_codec
from sinks.archive_schema import records_to_table

DAY = 86_400_000
MIDNIGHT = parse_ts("2026-05-11T00:00:00Z")
APRIL_END = parse_ts("2026-05-01T00:00:00Z")
INSTANTS = [MIDNIGHT - DAY, MIDNIGHT - 1, MIDNIGHT, MIDNIGHT + 1, MIDNIGHT + 3_600_000, APRIL_END - 1, APRIL_END]
MS = [0, 29_999, 30_000, 45_000, 45_000, 45_000, 43_200_000, 43_200_001, 86_400_000]
TRACKS = ["t1", "t1x", "t2", "t9"]  # t1x: alias upload of t1's ISRC; t9: never ingested
SHARES = [
    [("a", 1_000_000)],
    [("a", 500_000), ("b", 500_000)],
    [("b", 333_334), ("a", 333_333), ("c", 333_333)],
    [("c", 999_999), ("b", 1)],
    [("a", 0), ("b", 1_000_000)],
]
BAD_LINES = [
    # shares not summing to 1,000,000 / a rightsholder twice / negative ms / unknown product
    {"type": "track.ingested", "event_id": "bad-1", "occurred_at": "2026-05-01T00:00:00Z", "track_id": "t2",
     "isrc": "I2", "title": "x", "album_id": "al", "artist_ids": [], "duration_ms": 1, "genres": [],
     "explicit": False, "distributor": "d", "rightsholders": [{"rightsholder_id": "z", "share_ppm": 999_999}]},
    {"type": "track.ingested", "event_id": "bad-2", "occurred_at": "2026-05-01T00:00:00Z", "track_id": "t2",
     "isrc": "I2", "title": "x", "album_id": "al", "artist_ids": [], "duration_ms": 1, "genres": [],
     "explicit": False, "distributor": "d",
     "rightsholders": [{"rightsholder_id": "z", "share_ppm": 500_000}, {"rightsholder_id": "z", "share_ppm": 500_000}]},
    {"type": "play.progress", "event_id": "bad-3", "occurred_at": "2026-05-11T00:00:00Z", "play_id": "p0",
     "user_id": "u1", "track_id": "t1", "ms_played": -5, "country": "SE", "product": "premium", "context_uri": None},
    {"type": "play.started", "event_id": "bad-4", "occurred_at": "2026-05-11T00:00:00Z", "play_id": "pz",
     "user_id": "u1", "track_id": "t1", "device_id": "d", "context_uri": None, "country": "SE",
     "product": "family", "offline": False},
]


class Ids:
    def __init__(self) -> None:
        self.n = itertools.count()

    def eid(self) -> str:
        return f"e{next(self.n):05d}"


def ingest(ids: Ids, track: str, isrc: str, shares, at: int) -> dict:
    return {"type": "track.ingested", "event_id": ids.eid(), "occurred_at": at, "track_id": track, "isrc": isrc,
            "title": "T", "album_id": "al", "artist_ids": ["ar"], "duration_ms": 200_000, "genres": [],
            "explicit": False, "distributor": "d",
            "rightsholders": [{"rightsholder_id": r, "share_ppm": s} for r, s in shares]}


def rights(ids: Ids, track: str, country: str, allowed: bool, at: int, vf=None, vt=None) -> dict:
    return {"type": "rights.changed", "event_id": ids.eid(), "occurred_at": at, "track_id": track,
            "territory": country, "allowed": allowed, "valid_from": vf, "valid_to": vt}


def play_events(ids: Ids, play_id: str, user: str, track: str, country: str, product: str, at: int, ms: int,
                started: bool, kind: str) -> list[dict]:
    common = {"play_id": play_id, "user_id": user, "track_id": track, "country": country, "product": product}
    out = []
    if started:
        out.append({"type": "play.started", "event_id": ids.eid(), "occurred_at": at, **common, "device_id": "d",
                    "context_uri": None, "offline": False})
    out.append({"type": "play.progress", "event_id": ids.eid(), "occurred_at": at + 1000, **common,
                "ms_played": ms // 2, "context_uri": None})
    out.append({"type": kind, "event_id": ids.eid(), "occurred_at": at + 2000, **common, "ms_played": ms})
    return out


@st.composite
def event_sets(draw: st.DrawFn) -> list[dict]:
    ids = Ids()
    inst = st.sampled_from(INSTANTS)
    country = st.sampled_from(["SE", "DE"])
    early = MIDNIGHT - 20 * DAY
    out: list[dict] = []
    if draw(st.integers(0, 3)):
        out.append(ingest(ids, "t1", "I1", draw(st.sampled_from(SHARES)), early))
        out.append(ingest(ids, "t2", "I2", draw(st.sampled_from(SHARES)), early))
        out += [rights(ids, t, c, True, early) for t in ("t1", "t2") for c in ("SE", "DE")]
    for _ in range(draw(st.integers(0, 3))):  # re-ingests and alias uploads with changed shares
        out.append(ingest(ids, draw(st.sampled_from(TRACKS[:3])), draw(st.sampled_from(["I1", "I2"])),
                          draw(st.sampled_from(SHARES)), draw(inst)))
    for _ in range(draw(st.integers(0, 4))):  # rights windows and blocks, also on the alias id
        vf, vt = draw(st.one_of(st.none(), inst)), draw(st.one_of(st.none(), inst))
        if vf is not None and vt is not None and vt < vf:
            vf, vt = vt, vf
        out.append(rights(ids, draw(st.sampled_from(TRACKS)), draw(country), draw(st.booleans()), draw(inst), vf, vt))
    for _ in range(draw(st.integers(0, 2))):
        out.append({"type": "track.taken_down", "event_id": ids.eid(), "occurred_at": draw(inst),
                    "track_id": draw(st.sampled_from(TRACKS)),
                    "territories": draw(st.sampled_from([["*"], ["SE"], ["DE", "SE"]])), "reason": "r"})
    for _ in range(draw(st.integers(0, 3))):  # pools, sometimes declared twice at one instant
        at = draw(inst)
        for _ in range(draw(st.integers(1, 2))):
            out.append({"type": "royalty.pool_declared", "event_id": ids.eid(), "occurred_at": at,
                        "period": draw(st.sampled_from(["2026-04", "2026-05"])), "country": draw(country),
                        "product": draw(st.sampled_from(["free", "premium"])),
                        "amount_micros": draw(st.integers(0, 10_000_007)), "currency": "EUR"})
    n_plays = draw(st.integers(0, 12))
    for i in range(n_plays):
        out += play_events(ids, f"p{i}", draw(st.sampled_from(["u1", "u2"])), draw(st.sampled_from(TRACKS)),
                           draw(country), draw(st.sampled_from(["free", "premium"])), draw(inst),
                           draw(st.sampled_from(MS)), draw(st.integers(0, 5)) > 0,
                           draw(st.sampled_from(["play.completed", "play.skipped"])))
    if draw(st.booleans()):  # a loop farm: one user, one track, one day, more plays than the cap
        for i in range(draw(st.integers(19, 23))):
            out += play_events(ids, f"loop{i}", "u3", "t1", "SE", "premium", MIDNIGHT + 60_000 * (i % 7),
                               45_000, True, "play.completed")
    return out


def _fold(events: list[dict], period: str):
    return royalties.statement(royalties.fold(events), period)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(events=event_sets(), data=st.data())
def test_sql_engine_equals_fold_on_every_source(events: list[dict], data: st.DataObject) -> None:
    codec = default_codec()
    shuffled = list(data.draw(st.permutations(events)))
    for d in data.draw(st.lists(st.sampled_from(events), max_size=6)) if events else []:
        shuffled.insert(data.draw(st.integers(0, len(shuffled))), dict(d))  # duplicate deliveries
    lines = [orjson.dumps(codec.to_json(e)) for e in shuffled]
    bad = data.draw(st.lists(st.sampled_from(BAD_LINES), max_size=3))
    for b in bad:
        lines.insert(data.draw(st.integers(0, len(lines))), orjson.dumps(b))
    with tempfile.TemporaryDirectory() as tmp:
        jsonl = Path(tmp) / "events.jsonl"
        jsonl.write_bytes(b"\n".join(lines) + b"\n")
        pq_path = Path(tmp) / "archive.parquet"
        records = [("t", 0, i, None, e) for i, e in enumerate(shuffled)]
        pq.write_table(records_to_table(records), pq_path)
        for period in ("2026-04", "2026-05"):
            expected = sorted(_fold(events, period))
            via_codec = compute(jsonl, period, validate="codec")
            assert sorted(via_codec.lines) == expected
            assert len(via_codec.rejected) == len(bad)
            assert sorted(compute(jsonl, period, validate="sql").lines) == expected
            assert sorted(compute(pq_path, period).lines) == expected
