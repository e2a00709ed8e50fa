"""The sql engine on the shared fixture (byte for byte) and on bad input."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from processors.statement import to_csv
from replay.sql_engine import SqlEngineError, compute, compute_from_path, period_bounds

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
SAMPLE = FIXTURES / "royalties-sample.jsonl"


@pytest.mark.parametrize("period", ["2026-04", "2026-05"])
@pytest.mark.parametrize("validate", ["codec", "sql"])
def test_fixture_statement_is_byte_identical(period: str, validate: str) -> None:
    expected = (FIXTURES / f"royalties-sample-{period}.csv").read_text()
    assert to_csv(compute(SAMPLE, period, validate=validate).lines) == expected


def test_period_without_events_gives_an_empty_statement() -> None:
    assert compute_from_path(SAMPLE, "2025-01") == []


@pytest.mark.parametrize("period", ["2026-13", "26-05", "2026-5", "", "2026-05-01"])
def test_bad_period_is_a_clear_error(period: str) -> None:
    with pytest.raises(SqlEngineError, match="YYYY-MM"):
        compute_from_path(SAMPLE, period)


def test_missing_source_and_empty_archive(tmp_path: Path) -> None:
    with pytest.raises(SqlEngineError, match="no such file"):
        compute_from_path(tmp_path / "nope.jsonl", "2026-05")
    with pytest.raises(SqlEngineError, match="no Parquet files"):
        compute_from_path(tmp_path, "2026-05")


def test_period_bounds_cover_the_month_in_utc() -> None:
    lo, hi = period_bounds("2026-12")
    assert (hi - lo) == 31 * 86_400_000
    assert period_bounds("2027-01")[0] == hi


def _ingest(eid: str, shares: list[tuple[str, int]]) -> dict:
    return {"type": "track.ingested", "event_id": eid, "occurred_at": "2026-04-01T00:00:00Z", "track_id": "t1",
            "isrc": "I1", "title": "x", "album_id": "al", "artist_ids": [], "duration_ms": 1, "genres": [],
            "explicit": False, "distributor": "d",
            "rightsholders": [{"rightsholder_id": r, "share_ppm": s} for r, s in shares]}


def _base() -> list[dict]:
    return [
        _ingest("i1", [("a", 1_000_000)]),
        {"type": "rights.changed", "event_id": "r1", "occurred_at": "2026-04-01T00:00:00Z", "track_id": "t1",
         "territory": "SE", "allowed": True, "valid_from": None, "valid_to": None},
        {"type": "royalty.pool_declared", "event_id": "pd", "occurred_at": "2026-05-01T00:00:00Z",
         "period": "2026-05", "country": "SE", "product": "premium", "amount_micros": 1000, "currency": "EUR"},
        {"type": "play.started", "event_id": "s1", "occurred_at": "2026-05-02T00:00:00Z", "play_id": "p1",
         "user_id": "u", "track_id": "t1", "device_id": "d", "context_uri": None, "country": "SE",
         "product": "premium", "offline": False},
        {"type": "play.completed", "event_id": "c1", "occurred_at": "2026-05-02T00:01:00Z", "play_id": "p1",
         "user_id": "u", "track_id": "t1", "ms_played": 60_000, "country": "SE", "product": "premium"},
    ]


BAD = {
    "shares not summing": _ingest("i2", [("b", 999_999)]),
    "rightsholder twice": _ingest("i3", [("b", 500_000), ("b", 500_000)]),
    "negative ms": {"type": "play.progress", "event_id": "n1", "occurred_at": "2026-05-02T00:00:30Z",
                    "play_id": "p1", "user_id": "u", "track_id": "t1", "ms_played": -1, "country": "SE",
                    "product": "premium", "context_uri": None},
    "unknown product": {"type": "play.started", "event_id": "s0", "occurred_at": "2026-05-01T23:00:00Z",
                        "play_id": "p1", "user_id": "u", "track_id": "t1", "device_id": "d", "context_uri": None,
                        "country": "SE", "product": "family", "offline": False},
}


@pytest.mark.parametrize("validate", ["codec", "sql"])
@pytest.mark.parametrize("name", sorted(BAD))
def test_invalid_events_take_no_part(tmp_path: Path, validate: str, name: str) -> None:
    """Each bad event would change the statement if it counted (new shares, an earlier start...)."""
    good = tmp_path / "good.jsonl"
    good.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in _base()))
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in [BAD[name], *_base()]) + b"{not json\n")
    want = compute(good, "2026-05", validate="codec").lines
    assert [(r.rightsholder_id, r.streams, r.amount_micros) for r in want] == [("a", 1, 1000)]
    if validate == "sql":
        with pytest.raises(SqlEngineError):  # DuckDB's reader refuses the malformed line outright
            compute(mixed, "2026-05", validate="sql")
        mixed.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in [BAD[name], *_base()]))
    got = compute(mixed, "2026-05", validate=validate)
    assert got.lines == want
    if validate == "codec":
        assert [n for n, _ in got.rejected] == [1, 7]


def test_sql_takes_the_rules_from_processors_rules() -> None:
    """The engine's SQL is formatted from processors/rules.py, not from copies of the numbers."""
    from processors import rules
    from replay import sql_engine

    sql = sql_engine.statement_sql(0, 1)
    assert f"pp.ms >= {rules.MIN_STREAM_MS}" in sql
    assert f"HAVING sum(ms) > {rules.IMPOSSIBLE_MS}" in sql
    assert f"HAVING count(*) > {rules.LOOP_CAP}" in sql and f"<= {rules.LOOP_CAP}" in sql
    assert f"* {rules.PPM})" in sql and f"// {rules.DAY_MS}" in sql
    assert f"type = '{rules.PLAY_STARTED}'" in sql
    assert f"= {rules.PPM}" in sql_engine._VALID_SQL
    assert set(sql_engine.ROYALTY_TYPES) == rules.ROYALTY_TYPES
    for name in ("DAY_MS", "MIN_STREAM_MS", "IMPOSSIBLE_MS", "LOOP_CAP", "PPM"):
        assert getattr(sql_engine, name) is getattr(rules, name)
