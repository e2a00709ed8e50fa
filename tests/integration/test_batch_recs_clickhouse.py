"""The feature store's ClickHouse SQL (batch/recs_sql.py) on the real local server (Debian's 18.16: no
window functions, no WITH subqueries): the same documents as the DuckDB SQL, which agrees with the exact
Python similarity (tests/unit/test_batch_recs.py)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from batch.recs import compute_clickhouse, compute_duckdb
from sinks.clickhouse import PLAY_COLUMNS, client_for, ddl
from tests.integration.conftest_clickhouse import clickhouse  # noqa: F401 - the session fixture
from tests.unit.test_batch_recs import AS_OF, _con, generated_plays

pytestmark = pytest.mark.clickhouse


def test_clickhouse_gives_the_duckdb_documents(clickhouse) -> None:  # noqa: F811
    client, _ = client_for(clickhouse.url)
    db = "recstest"
    for stmt in ddl(db):
        client.execute(stmt)
    plays = generated_plays(21)
    rows = []
    for version in (1, 2):  # a republished period: FINAL reads one row per play
        for p in plays:
            period, pid, user, track, canon, country, product, cx, pt, day, ms, skipped, is_stream = p
            rows.append((period, pid, user, track, canon, country or "", product, cx, pt,
                         date(1970, 1, 1) + timedelta(days=day), ms, int(skipped), int(is_stream), version))
    cols = ", ".join(f"`{c}`" for c in PLAY_COLUMNS)
    client.execute(f"INSERT INTO {db}.plays ({cols}) VALUES", rows)
    try:
        for k, days in ((50, 28), (4, 7)):
            got = compute_clickhouse(client, db, AS_OF, days=days, k=k)
            assert got[0] and got[1]
            assert got == compute_duckdb(_con(plays), AS_OF, days=days, k=k)
    finally:
        client.execute(f"DROP DATABASE IF EXISTS {db}")
        client.disconnect()


def test_cli_on_clickhouse_publishes_what_it_publishes_on_duckdb(clickhouse, kafka_env, monkeypatch) -> None:  # noqa: F811
    """``playlog batch recs --warehouse clickhouse`` syncs ClickHouse through the ClickHouse sink, then
    publishes the very documents the DuckDB run published for the same log and as-of."""
    import subprocess
    import sys
    from pathlib import Path

    import orjson

    from topics.admin import create_topics
    from topics.consumer import iter_records

    fixtures = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
    url = clickhouse.url.rsplit("/", 1)[0] + "/recscli"
    monkeypatch.setenv("PLAYLOG_CLICKHOUSE_URL", url)
    settings = kafka_env
    create_topics(settings)
    playlog = [sys.executable, "-m", "playlog"]
    r = subprocess.run([*playlog, "produce", str(fixtures / "royalties-sample.jsonl")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr

    def run_and_read(*args: str) -> tuple[dict[str, list], int]:
        r = subprocess.run([*playlog, "batch", "recs", "--as-of", "2026-05-20T00:00:00Z", *args],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        out: dict[str, list] = {}
        records = 0
        for topic in ("view.similar", "view.popularity"):
            docs: dict[bytes, bytes | None] = {}
            for rec in iter_records(settings, [settings.topic_prefix + topic]):
                docs[rec.key] = rec.value
                records += 1
            out[topic] = sorted((k, orjson.loads(v)) for k, v in docs.items() if v is not None)
        return out, records

    on_duckdb, n1 = run_and_read()
    on_clickhouse, n2 = run_and_read("--warehouse", "clickhouse")
    assert on_duckdb["view.similar"] and on_duckdb["view.popularity"]
    assert n2 == 2 * n1  # the ClickHouse run published every document again (no tombstone: the same keys)
    assert on_clickhouse == on_duckdb
