"""The analyst queries (sinks/sql/duckdb/*.sql, ``playlog sink query NAME``) on a hand-made event
set whose answers were worked out by hand from spec/royalties.md and README.md's table, written
here as literals. tests/integration/test_clickhouse_sink.py holds ClickHouse to the same literals.

The events (two dozen): tracks tA (ISRC IA; rh1 60 %, rh2 40 %), tA2 (a later upload of IA, so
an alias of tA; same shares) and tB (IB; rh2 100 %); rights for tA in SE and DE, tB in SE; pools
for 2026-05: SE/premium 1,000,001 and DE/free 500,000 then 300,000 (the latest counts); none for
2026-04. Plays (play time = its play.started; ms = its largest ms_played):

  play user track country/product context             play time             ms       stream? skipped?
  p1   u1   tA2   SE premium      spotify:playlist:x  2026-05-03 10:00      200,000  yes     no
  p2   u1   tB    SE premium      spotify:playlist:x  2026-05-03 11:00       40,000  yes     yes
  p3   u2   tA    SE premium      -                   2026-05-03 12:00       10,000  no <30s yes
  p4   u2   tA    DE free         spotify:album:y     2026-05-04 09:00      180,000  yes     no
  p5   u3   tB    SE premium      -                   2026-05-04 10:00      120,000  yes     no
  p6   u1   tC    SE free         - (no play.started) 2026-05-04 11:00      100,000  no (unknown track)
  p7   u1   tA    SE premium      spotify:playlist:x  2026-04-30 23:59:59    60,000  yes (April; ends in May)
  p8   u3   tA2   SE premium      -                   2026-05-03 13:00       90,000  yes

Money, 2026-05 SE/premium: S = 4 streams (p1, p8 of tA; p2, p5 of tB), P = 1,000,001:
rh1/tA 2 streams, 1,000,001 * 1,200,000 / 4,000,000 = 300,000.3; rh2/tA 200,000.2; rh2/tB
500,000.5; floors sum to 1,000,000, the one micro left goes to the largest remainder (rh2/tB).
2026-05 DE/free: S = 1 (p4), P = 300,000: rh1/tA 180,000, rh2/tA 120,000.
2026-04 SE/premium: S = 1 (p7), P = 0: rh1/tA and rh2/tA one stream each, 0 micros.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from schemas.codec import default_codec
from sinks.duckdb_sink import DuckDBWarehouse
from sinks.queries import query_names, run_duckdb
from topics.topic_catalog import key_of, topic_of

SHARES_A = [{"rightsholder_id": "rh1", "share_ppm": 600_000}, {"rightsholder_id": "rh2", "share_ppm": 400_000}]
SHARES_B = [{"rightsholder_id": "rh2", "share_ppm": 1_000_000}]


def _track(eid: str, at: str, track_id: str, isrc: str, shares: list[dict]) -> dict:
    return {"type": "track.ingested", "event_id": eid, "occurred_at": at, "track_id": track_id, "isrc": isrc,
            "title": track_id, "album_id": "al", "artist_ids": ["ar"], "duration_ms": 240_000, "genres": ["pop"],
            "explicit": False, "distributor": "d", "rightsholders": shares}


def _rights(eid: str, track_id: str, territory: str) -> dict:
    return {"type": "rights.changed", "event_id": eid, "occurred_at": "2026-04-01T00:00:00Z", "track_id": track_id,
            "territory": territory, "allowed": True, "valid_from": None, "valid_to": None}


def _pool(eid: str, at: str, country: str, product: str, amount: int) -> dict:
    return {"type": "royalty.pool_declared", "event_id": eid, "occurred_at": at, "period": "2026-05",
            "country": country, "product": product, "amount_micros": amount, "currency": "EUR"}


def _play(kind: str, eid: str, at: str, play_id: str, user: str, track: str, country: str, product: str,
          ms: int = 0, context: str | None = None) -> dict:
    e = {"type": f"play.{kind}", "event_id": eid, "occurred_at": at, "play_id": play_id, "user_id": user,
         "track_id": track, "country": country, "product": product}
    if kind == "started":
        e.update(device_id="d1", context_uri=context, offline=False)
    else:
        e["ms_played"] = ms
        if kind == "progress":
            e["context_uri"] = context
    return e


PLAYLIST, ALBUM = "spotify:playlist:x", "spotify:album:y"
EVENTS = [
    _track("c1", "2026-04-01T00:00:00Z", "tA", "IA", SHARES_A),
    _track("c2", "2026-04-02T00:00:00Z", "tA2", "IA", SHARES_A),
    _track("c3", "2026-04-01T00:00:00Z", "tB", "IB", SHARES_B),
    _rights("r1", "tA", "SE"),
    _rights("r2", "tB", "SE"),
    _rights("r3", "tA", "DE"),
    _pool("f1", "2026-05-31T00:00:00Z", "SE", "premium", 1_000_001),
    _pool("f2", "2026-05-20T00:00:00Z", "DE", "free", 500_000),
    _pool("f3", "2026-05-25T00:00:00Z", "DE", "free", 300_000),
    _play("started", "p1s", "2026-05-03T10:00:00Z", "p1", "u1", "tA2", "SE", "premium", context=PLAYLIST),
    _play("completed", "p1c", "2026-05-03T10:03:20Z", "p1", "u1", "tA2", "SE", "premium", ms=200_000),
    _play("started", "p2s", "2026-05-03T11:00:00Z", "p2", "u1", "tB", "SE", "premium", context=PLAYLIST),
    _play("skipped", "p2k", "2026-05-03T11:00:40Z", "p2", "u1", "tB", "SE", "premium", ms=40_000),
    _play("started", "p3s", "2026-05-03T12:00:00Z", "p3", "u2", "tA", "SE", "premium"),
    _play("skipped", "p3k", "2026-05-03T12:00:10Z", "p3", "u2", "tA", "SE", "premium", ms=10_000),
    _play("started", "p4s", "2026-05-04T09:00:00Z", "p4", "u2", "tA", "DE", "free", context=ALBUM),
    _play("progress", "p4p", "2026-05-04T09:00:35Z", "p4", "u2", "tA", "DE", "free", ms=35_000, context=ALBUM),
    _play("completed", "p4c", "2026-05-04T09:03:00Z", "p4", "u2", "tA", "DE", "free", ms=180_000),
    _play("started", "p5s", "2026-05-04T10:00:00Z", "p5", "u3", "tB", "SE", "premium"),
    _play("completed", "p5c", "2026-05-04T10:02:00Z", "p5", "u3", "tB", "SE", "premium", ms=120_000),
    _play("completed", "p6c", "2026-05-04T11:00:00Z", "p6", "u1", "tC", "SE", "free", ms=100_000),
    _play("started", "p7s", "2026-04-30T23:59:59Z", "p7", "u1", "tA", "SE", "premium", context=PLAYLIST),
    _play("completed", "p7c", "2026-05-01T00:00:59Z", "p7", "u1", "tA", "SE", "premium", ms=60_000),
    _play("started", "p8s", "2026-05-03T13:00:00Z", "p8", "u3", "tA2", "SE", "premium"),
    _play("completed", "p8c", "2026-05-03T13:01:30Z", "p8", "u3", "tA2", "SE", "premium", ms=90_000),
]

# the answers, by hand (see the module doc); columns as README.md's table says
EXPECTED: dict[str, list[tuple]] = {
    # country, day, canonical track_id, streams: top 10 per (country, day), streams desc, then track_id
    "top_tracks_per_country_day": [
        ("DE", date(2026, 5, 4), "tA", 1),
        ("SE", date(2026, 4, 30), "tA", 1),
        ("SE", date(2026, 5, 3), "tA", 2),  # p1 and p8 played the alias tA2
        ("SE", date(2026, 5, 3), "tB", 1),
        ("SE", date(2026, 5, 4), "tB", 1),
    ],
    # context ('(none)' without one), plays, skips, skip rate in ppm (integer division)
    "skip_rate_by_context": [
        ("(none)", 4, 1, 250_000),  # p3 (skipped), p5, p6, p8
        (ALBUM, 1, 0, 0),  # p4
        (PLAYLIST, 3, 1, 333_333),  # p1, p2 (skipped), p7
    ],
    # period, rightsholder_id, streams, royalty micros
    "rightsholder_totals": [
        ("2026-04", "rh1", 1, 0),
        ("2026-04", "rh2", 1, 0),
        ("2026-05", "rh1", 3, 300_000 + 180_000),
        ("2026-05", "rh2", 5, 200_000 + 500_001 + 120_000),
    ],
    # period, product, plays, total ms, hours (3 decimals)
    "listening_hours_per_product": [
        ("2026-04", "premium", 1, 60_000, 0.017),
        ("2026-05", "free", 2, 180_000 + 100_000, 0.078),
        ("2026-05", "premium", 5, 200_000 + 40_000 + 10_000 + 120_000 + 90_000, 0.128),
    ],
}


def records() -> list[tuple]:
    """(topic, partition, offset, key, event): one partition per topic, offsets in file order."""
    codec = default_codec()
    offsets: dict[str, int] = {}
    out = []
    for obj in EVENTS:
        ev = codec.from_json(obj)
        topic = topic_of(ev["type"])
        out.append((topic, 0, offsets.setdefault(topic, 0), key_of(ev), ev))
        offsets[topic] += 1
    return out


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("handmade") / "w.duckdb"
    wh = DuckDBWarehouse(path)
    wh.write(records())
    wh.flush()
    wh.close()
    return path


def test_every_query_has_a_hand_computed_answer() -> None:
    assert sorted(EXPECTED) == query_names()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_duckdb_query_gives_the_hand_computed_rows(warehouse: Path, name: str) -> None:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert run_duckdb(con, name) == EXPECTED[name]
    finally:
        con.close()


def _csv(rows: list[tuple]) -> list[str]:
    return [",".join(str(v) for v in r) for r in rows]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_playlog_sink_query_prints_them_as_csv(warehouse: Path, name: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("playlog")), "sink", "query", name, "--warehouse", str(warehouse)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == _csv(EXPECTED[name])
