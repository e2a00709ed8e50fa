"""The feature store's SQL (batch/recs_sql.py): item-item neighbours agree with the exact Python
version (processors/recs/similarity.py) on generated plays, on DuckDB and on a current ClickHouse
engine (chdb); popularity windows and tombstones against hand counts."""

from __future__ import annotations

import math
import random

import chdb.session as chdb_session
import duckdb
import orjson
import pytest

from batch.recs import compute_clickhouse, compute_duckdb, popularity_docs, similar_docs, tombstones
from batch.recs_sql import popularity_sql, similar_sql
from processors.recs import similarity
from processors.rules import DAY_MS, MIN_STREAM_MS
from sinks.clickhouse import ddl as ch_ddl
from sinks.duckdb_sink import DERIVED_DDL

AS_OF = 1_780_000_000_000  # 2026-05-28T20:26:40Z


def _play(i: int, user: str, track: str, canon: str | None, country: str | None, pt: int, ms: int) -> tuple:
    return ("2026-05", f"p{i}", user, track, canon, country, "premium", None, pt, pt // DAY_MS, ms, False, True)


def _con(plays: list[tuple]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(DERIVED_DDL)
    con.executemany(
        "INSERT INTO plays VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, make_date(1970, 1, 1) + CAST(? AS INTEGER), ?, ?, ?)",
        plays,
    )
    return con


def generated_plays(seed: int, users: int = 60, tracks: int = 25) -> list[tuple]:
    """Plays of few tracks (many equal counts: ties), alias uploads (track_id != canon), tracks the
    catalog does not know (canon NULL), short plays and plays after AS_OF (both must not count)."""
    rnd = random.Random(seed)
    out = []
    for i in range(users * 6):
        u = f"u{rnd.randrange(users):02d}"
        t = f"t{rnd.randrange(tracks):02d}"
        kind = rnd.random()
        track, canon = (f"alias-{t}", t) if kind < 0.1 else ((t, None) if kind < 0.15 else (t, t))
        pt = AS_OF + rnd.randint(-60 * DAY_MS, 3 * DAY_MS)
        ms = rnd.choice([4_000, MIN_STREAM_MS - 1, MIN_STREAM_MS, 95_000, 210_000])
        out.append(_play(i, u, track, canon, rnd.choice(["SE", "DE", "US", None]), pt, ms))
    return out


def python_listeners(plays: list[tuple]) -> dict[str, set[str]]:
    """listener -> tracks streamed before AS_OF, from the rows themselves (not the SQL)."""
    out: dict[str, set[str]] = {}
    for _, _, user, track, canon, _, _, _, pt, _, ms, _, _ in plays:
        if ms >= MIN_STREAM_MS and pt < AS_OF:
            out.setdefault(user, set()).add(canon or track)
    return out


def _neighbours(docs: dict[str, dict]) -> dict[str, list[tuple[str, float]]]:
    return {a: [(b, s) for b, s in d["neighbours"]] for a, d in docs.items()}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("k", [3, 50])
def test_sql_neighbours_equal_the_exact_python_ones(seed: int, k: int) -> None:
    plays = generated_plays(seed)
    want = similarity.item_item(python_listeners(plays), k=k)
    assert want and any(len(v) == k for v in want.values()) or k == 50
    sim, _ = compute_duckdb(_con(plays), AS_OF, k=k)
    assert _neighbours(sim) == want  # same tracks, same order, bit-identical scores
    assert all(d["as_of"] == AS_OF and d["track_id"] == a for a, d in sim.items())


def test_exact_ties_are_ordered_by_id_even_where_the_float_scores_differ() -> None:
    # a's neighbours x (1 of its 1 listener shares a) and y (3 of 9): c^2/n = 1 for both, an exact tie
    # that goes to the smaller id; pick n_a so that the float scores 1/sqrt(n_a) and 3/sqrt(9 n_a)
    # differ, with the smaller id on the float-worse side
    na = next(n for n in range(4, 500) if 1 / math.sqrt(n) != 3 / math.sqrt(9 * n))
    worse, better = sorted([("x", 1 / math.sqrt(na)), ("y", 3 / math.sqrt(9 * na))], key=lambda p: p[1])
    ids = {worse[0]: "b1", better[0]: "b2"}  # the float-worse track gets the smaller id
    listeners: dict[str, set[str]] = {f"l{i}": {"a"} for i in range(na)}
    listeners["l0"].add(ids["x"])  # x: 1 listener, shared with a
    for i in range(9):  # y: 9 listeners, 3 of them also a's
        listeners.setdefault(f"l{i + 1}" if i < 3 else f"m{i}", set()).add(ids["y"])
    plays = [_play(i, u, t, t, "SE", AS_OF - 1000, 60_000)
             for i, (u, t) in enumerate((u, t) for u, ts in sorted(listeners.items()) for t in sorted(ts))]
    sim, _ = compute_duckdb(_con(plays), AS_OF)
    assert [b for b, _ in sim["a"]["neighbours"]] == ["b1", "b2"]
    assert [b for b, _ in similarity.item_item(listeners)["a"]] == ["b1", "b2"]


def test_popularity_counts_streams_all_time_and_per_country_in_the_window() -> None:
    d = DAY_MS
    plays = [
        _play(1, "u1", "t1", "t1", "SE", AS_OF - 1, 30_000),            # in window, SE
        _play(2, "u2", "t1", "t1", "SE", AS_OF - 28 * d, 31_000),       # window start: in
        _play(3, "u3", "alias-t1", "t1", "DE", AS_OF - 2 * d, 200_000),  # alias counts for the canon
        _play(4, "u1", "t1", "t1", "SE", AS_OF - 28 * d - 1, 40_000),   # before the window: total only
        _play(5, "u1", "t1", "t1", "SE", AS_OF, 40_000),                # at as_of: not counted
        _play(6, "u1", "t1", "t1", "US", AS_OF - d, 29_999),            # not a stream
        _play(7, "u4", "t2", "t2", "US", AS_OF - 90 * d, 60_000),       # old: total only
        _play(8, "u4", "x9", None, None, AS_OF - d, 60_000),            # unknown track, no country
        _play(9, "u5", "t3", "t3", "SE", AS_OF - d, 1_000),             # t3 never streamed: no document
    ]
    _, pop = compute_duckdb(_con(plays), AS_OF, days=28)
    assert pop == {
        "t1": {"track_id": "t1", "streams": 4, "by_country": {"DE": 1, "SE": 2}, "days": 28, "as_of": AS_OF},
        "t2": {"track_id": "t2", "streams": 1, "by_country": {}, "days": 28, "as_of": AS_OF},
        "x9": {"track_id": "x9", "streams": 1, "by_country": {}, "days": 28, "as_of": AS_OF},
    }
    _, pop7 = compute_duckdb(_con(plays), AS_OF, days=1)
    assert pop7["t1"]["by_country"] == {"SE": 1} and pop7["t1"]["streams"] == 4


def test_documents_are_deterministic_and_tombstones_name_the_dropped_keys() -> None:
    plays = generated_plays(7)
    a = compute_duckdb(_con(plays), AS_OF)
    b = compute_duckdb(_con(list(reversed(plays))), AS_OF)
    assert orjson.dumps(a) == orjson.dumps(b)
    assert tombstones({"t01", "gone", "t02"}, {"t01": {}, "t02": {}, "new": {}}) == ["gone"]
    assert tombstones([], {}) == []
    assert similar_docs([("a", "b", 0.5), ("a", "c", 0.25), ("b", "a", 0.5)], 7) == {
        "a": {"track_id": "a", "neighbours": [["b", 0.5], ["c", 0.25]], "as_of": 7},
        "b": {"track_id": "b", "neighbours": [["a", 0.5]], "as_of": 7},
    }
    assert popularity_docs([("t", None, 2, 1), ("t", "SE", 3, 0)], 9, 28)["t"] == {
        "track_id": "t", "streams": 5, "by_country": {}, "days": 28, "as_of": 9}


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="dialect"):
        similar_sql("postgres", AS_OF)
    with pytest.raises(ValueError, match="at least 1"):
        popularity_sql("duckdb", AS_OF, days=0)
    with pytest.raises(TypeError, match="as_of"):
        similar_sql("duckdb", "2026-05-01")  # type: ignore[arg-type]


class _ChdbClient:
    """The few clickhouse-driver Client calls compute_clickhouse makes, on an in-process chdb session."""

    def __init__(self, sess):
        self.sess = sess
        self.db = "default"

    def execute(self, sql: str):
        if sql.startswith("USE "):
            self.db = sql.split()[1]
            return []
        out = self.sess.query(sql.replace(" FROM plays FINAL", f" FROM {self.db}.plays FINAL"), "JSONCompact")
        return [tuple(r) for r in orjson.loads(out.bytes())["data"]] if out.bytes() else []


def test_clickhouse_sql_gives_the_duckdb_answer(tmp_path) -> None:
    plays = generated_plays(11)
    con = _con(plays)
    out = tmp_path / "plays.parquet"
    con.execute(f"COPY plays TO '{out}' (FORMAT PARQUET)")
    sess = chdb_session.Session(str(tmp_path / "ch"))
    try:
        for stmt in ch_ddl("playlog"):
            sess.query(stmt)
        for version in (1, 2):  # a retried publish: FINAL sees one row per play
            sess.query(f"INSERT INTO playlog.plays SELECT *, {version} FROM file('{out}', Parquet)")
        got = compute_clickhouse(_ChdbClient(sess), "playlog", AS_OF, days=28, k=5)
    finally:
        sess.close()
    assert got == compute_duckdb(con, AS_OF, days=28, k=5)
    assert got[0] and got[1]


@pytest.mark.parametrize("args, message", [
    (["--as-of", "yesterday"], "--as-of must be an RFC 3339 UTC time"),
    (["--as-of", "2026-05-01T00:00:00"], "--as-of must be an RFC 3339 UTC time"),  # no offset
    (["--no-sync", "--warehouse-file", "{tmp}/missing.duckdb"], "no warehouse at"),
    (["--days", "0"], "Invalid value for '--days'"),
    (["--every", "60", "--as-of", "2026-05-01T00:00:00Z"], "--every recomputes as of each run's time"),
    (["--every", "-1"], "Invalid value for '--every'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args: list[str], message: str) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYLOG_")}
    env["PLAYLOG_DATA_DIR"] = str(tmp_path)
    r = subprocess.run([sys.executable, "-m", "playlog", "batch", "recs", *[a.format(tmp=tmp_path) for a in args]],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_a_sync_into_another_file_does_not_take_the_sinks_group(tmp_path) -> None:
    from batch.recs import DUCKDB_GROUP, default_group

    default = tmp_path / "warehouse.duckdb"
    assert default_group(tmp_path / "." / "warehouse.duckdb", default, DUCKDB_GROUP) == DUCKDB_GROUP
    other = default_group(tmp_path / "mine.duckdb", default, DUCKDB_GROUP)
    assert other != DUCKDB_GROUP and other.startswith("playlog-batch-mine-")
    assert other == default_group(tmp_path / "mine.duckdb", default, DUCKDB_GROUP)  # stable for the file
    assert other != default_group(tmp_path / "sub" / "mine.duckdb", default, DUCKDB_GROUP)
