"""The ClickHouse DDL and analyst queries on a current ClickHouse engine (the chdb wheel); the same
DDL runs on Debian's 18.16 server in tests/integration/test_clickhouse_sink.py."""

from __future__ import annotations

import json
from pathlib import Path

import chdb.session as chdb_session
import pytest

from schemas.codec import default_codec
from sinks.clickhouse import ddl
from sinks.duckdb_sink import DuckDBWarehouse
from sinks.queries import query_names, query_text, run_duckdb
from topics.topic_catalog import key_of, topic_of

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("chdb")
    codec = default_codec()
    recs = []
    for i, line in enumerate((FIXTURES / "royalties-sample.jsonl").read_bytes().splitlines()):
        ev = codec.from_json(json.loads(line))
        recs.append((topic_of(ev["type"]), 0, i, key_of(ev), ev))
    wh = DuckDBWarehouse(tmp / "w.duckdb")
    wh.write(recs)
    wh.flush()
    sess = chdb_session.Session(str(tmp / "ch"))
    for stmt in ddl("playlog"):
        sess.query(stmt)
    for table in ("plays", "statements"):
        out = tmp / f"{table}.parquet"
        wh.con.execute(f"COPY {table} TO '{out}' (FORMAT PARQUET)")
        for version in (1, 2):  # a retried publish: FINAL must still see one row per key
            sess.query(f"INSERT INTO playlog.{table} SELECT *, {version} FROM file('{out}', Parquet)")
    yield wh, sess
    wh.close()
    sess.close()


def test_ddl_is_idempotent_on_current_clickhouse(engines) -> None:
    _, sess = engines
    for stmt in ddl("playlog"):
        sess.query(stmt)
    tables = str(sess.query("SELECT name FROM system.tables WHERE database = 'playlog' ORDER BY name", "CSV"))
    assert tables.split() == ['"events"', '"plays"', '"statements"', '"streams"']


def test_final_reads_see_one_row_per_key(engines) -> None:
    wh, sess = engines
    n = wh.con.execute("SELECT count(*) FROM plays").fetchall()[0][0]
    assert str(sess.query("SELECT count() FROM playlog.plays", "CSV")).strip() == str(2 * n)
    assert str(sess.query("SELECT count() FROM playlog.plays FINAL", "CSV")).strip() == str(n)


@pytest.mark.parametrize("name", query_names())
def test_analyst_query_gives_the_duckdb_answer(engines, name: str) -> None:
    wh, sess = engines
    sess.query("USE playlog")
    got = str(sess.query(query_text(name, "clickhouse"), "JSONCompact"))
    rows = [tuple(r) for r in json.loads(got)["data"]]
    want = run_duckdb(wh.con, name)
    assert want, "the fixture must give every query some rows"
    norm = [tuple(str(v) for v in r) for r in want]
    assert [tuple(str(v) for v in r) for r in rows] == norm
