"""The ClickHouse sink and the analyst queries against the real local server (Debian 18.16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clickhouse_driver import Client

from processors.statement import StatementLine, to_csv
from schemas.codec import default_codec
from sinks.clickhouse import ClickHouseSink
from sinks.duckdb_sink import DuckDBWarehouse
from sinks.queries import query_names, run_clickhouse, run_duckdb
from tests.integration.conftest_clickhouse import clickhouse  # noqa: F401 - the session fixture
from tests.unit.test_analyst_queries import EXPECTED as HAND_COMPUTED
from tests.unit.test_analyst_queries import records as hand_made_records
from topics.topic_catalog import key_of, topic_of

pytestmark = pytest.mark.clickhouse
FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"  # ../shared/fixtures from the repo


@pytest.fixture(scope="module")
def loaded(clickhouse, tmp_path_factory):  # noqa: F811
    codec = default_codec()
    recs = []
    offs: dict = {}
    for line in (FIXTURES / "royalties-sample.jsonl").read_bytes().splitlines():
        ev = codec.from_json(json.loads(line))
        t, k = topic_of(ev["type"]), key_of(ev)
        p = sum(k.encode()) % 2
        recs.append((t, p, offs.setdefault((t, p), [0])[0], k, ev))
        offs[(t, p)][0] += 1
    wh = DuckDBWarehouse(tmp_path_factory.mktemp("chwh") / "w.duckdb")
    url = clickhouse.url.rsplit("/", 1)[0] + "/sinktest"
    sink = ClickHouseSink(url, warehouse=wh)
    for size in (2000, 3000):  # the second pass is a full retry with other batch boundaries
        for i in range(0, len(recs), size):
            sink.write(recs[i : i + size])
            sink.flush()
    yield sink, wh, recs
    sink.close()
    wh.close()


def test_server_is_the_debian_one(clickhouse) -> None:  # noqa: F811
    version = Client(host="127.0.0.1", port=clickhouse.tcp_port).execute("SELECT version()")[0][0]
    assert version.split(".")[0].isdigit()


def test_retried_inserts_leave_no_duplicate_in_final_reads(loaded) -> None:
    sink, _, recs = loaded
    c = sink.client
    assert c.execute("SELECT count() FROM sinktest.events FINAL")[0][0] == len(recs)
    keys = c.execute("SELECT `topic`, `partition`, `offset` FROM sinktest.events FINAL")
    assert sorted(keys) == sorted((t, p, o) for t, p, o, _, _ in recs)
    assert c.execute("SELECT count(), uniqExact(play_id) FROM sinktest.plays FINAL")[0] == (1622, 1622)


@pytest.mark.parametrize("period", ["2026-04", "2026-05"])
def test_statements_in_clickhouse_equal_the_fixture(loaded, period: str) -> None:
    sink, _, _ = loaded
    rows = sink.client.execute(
        "SELECT period, country, product, rightsholder_id, track_id, streams, amount_micros "
        "FROM sinktest.statements FINAL WHERE period = %(p)s AND streams > 0",
        {"p": period},
    )
    assert to_csv([StatementLine(*r) for r in rows]) == (FIXTURES / f"royalties-sample-{period}.csv").read_text()


@pytest.mark.parametrize("name", query_names())
def test_analyst_query_same_answer_on_duckdb_and_clickhouse(loaded, name: str) -> None:
    sink, wh, _ = loaded
    want = run_duckdb(wh.con, name)
    assert want
    assert run_clickhouse(sink.client, "sinktest", name) == want


@pytest.fixture(scope="module")
def hand_made(clickhouse, tmp_path_factory):  # noqa: F811
    """The hand-made event set of tests/unit/test_analyst_queries.py in a database of its own."""
    wh = DuckDBWarehouse(tmp_path_factory.mktemp("chhand") / "w.duckdb")
    sink = ClickHouseSink(clickhouse.url.rsplit("/", 1)[0] + "/handmade", warehouse=wh)
    sink.write(hand_made_records())
    sink.flush()
    yield sink
    sink.close()
    wh.close()


@pytest.mark.parametrize("name", sorted(HAND_COMPUTED))
def test_analyst_query_on_clickhouse_gives_the_hand_computed_rows(hand_made, name: str) -> None:
    assert sorted(HAND_COMPUTED) == query_names()
    assert run_clickhouse(hand_made.client, "handmade", name) == HAND_COMPUTED[name]


def test_vanished_statement_lines_are_tombstoned(loaded) -> None:
    sink, wh, _ = loaded
    c = sink.client
    c.execute("INSERT INTO sinktest.statements VALUES", [("2026-05", "SE", "free", "zz", "t-gone", 3, 9, 1)])
    sink.publish_derived(wh, ["2026-05"])
    assert c.execute(
        "SELECT streams FROM sinktest.statements FINAL WHERE rightsholder_id = 'zz' AND track_id = 't-gone'"
    ) == [(0,)]
