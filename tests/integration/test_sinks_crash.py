"""Sinks killed mid-write (SIGKILL of the worker process) and restarted leave no duplicate and no
gap: the keys (topic, partition, offset) in the sink equal those of the source topics, and the
royalty statements computed from what was sunk equal the fixture.

Scenarios (each a real `playlog sink ...` subprocess against the session's real Kafka broker):
- killed after a flush but before the offset commit: the batch is re-delivered; we expect the
  sink to absorb it (files rewritten / anti-join) rather than duplicate it;
- killed after writing but before the flush: nothing of that batch is durable or committed; we
  expect the restart to write it once;
- killed from outside at an arbitrary moment while it works.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from processors.statement import StatementLine, to_csv
from replay.sql_engine import compute
from schemas.codec import default_codec
from topics.admin import create_topics
from topics.consumer import iter_records
from topics.producer import EventProducer
from topics.topic_catalog import source_topics

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"  # ../shared/fixtures from the repo
PLAYLOG = [sys.executable, "-m", "playlog.cli"]
GARBAGE = b"\x00\x00\x00\x03\xe7not avro"


def _load_fixture(settings) -> list[tuple[str, int, int]]:
    create_topics(settings)
    codec = default_codec()
    producer = EventProducer(settings)
    for line in (FIXTURES / "royalties-sample.jsonl").read_bytes().splitlines():
        producer.produce(codec.from_json(json.loads(line)))
    producer.produce_raw(settings.topic_prefix + "listening", GARBAGE, key="u-bad")
    producer.flush()
    names = [settings.topic_prefix + t.name for t in source_topics()]
    return sorted((r.topic[len(settings.topic_prefix):], r.partition, r.offset) for r in iter_records(settings, names))


def _sink(args: list[str], fault: str | None, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PLAYLOG_SINK_FAULT", None)
    env["PLAYLOG_LOG_LEVEL"] = "WARNING"  # the fault injection says where it kills at WARNING
    if fault:
        env["PLAYLOG_SINK_FAULT"] = fault
    try:
        return subprocess.run(PLAYLOG + ["sink", *args], env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        pytest.fail(f"sink {args[0]} did not finish in {timeout}s: {err[-1500:]}")


def _assert_killed_at(proc: subprocess.CompletedProcess, fault: str) -> None:
    """The sink died of its own fault injection's SIGKILL at that point, not of anything else."""
    point, _, n = fault.partition(":")
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-2000:])
    assert f"fault injection: SIGKILL at {point} of batch {n}" in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.rstrip().endswith(f"fault injection: SIGKILL at {point} of batch {n}"), proc.stderr[-2000:]


def _archive_keys(root: Path) -> list[tuple[str, int, int]]:
    files = sorted(root.rglob("*.parquet"))
    if not files:
        return []
    t = pa.concat_tables([pq.read_table(f) for f in files])
    return sorted(zip(t["topic"].to_pylist(), t["partition"].to_pylist(), t["offset"].to_pylist(), strict=True))


def _dead_letters(settings) -> list:
    return list(iter_records(settings, [settings.topic_prefix + "deadletter"]))


@pytest.mark.parametrize("fault", ["after_flush:3", "before_flush:2"])
def test_parquet_sink_killed_and_restarted(kafka_env, tmp_path: Path, fault: str) -> None:
    source = _load_fixture(kafka_env)
    archive = tmp_path / "archive"
    args = ["parquet", "--archive", str(archive), "--batch-size", "700"]
    first = _sink(args, fault)
    _assert_killed_at(first, fault)
    # killed at that point: batches before it are durable, the rest of the topics is not
    durable = _archive_keys(archive)
    assert 0 < len(durable) < len(source) - 1, (len(durable), len(source))  # - 1: the garbage record
    second = _sink(args, None)
    assert second.returncode == 0, second.stderr[-2000:]
    sunk = _archive_keys(archive)
    dead = _dead_keys(kafka_env)
    assert len(dead) == 1 and next(iter(dead))[0] == "listening"  # the garbage record, once
    assert len(sunk) == len(set(sunk)), "duplicate offsets in the archive"
    assert sunk == [k for k in source if k not in dead]
    for period in ("2026-04", "2026-05"):
        assert to_csv(compute(archive, period).lines) == (FIXTURES / f"royalties-sample-{period}.csv").read_text()


def _dead_keys(settings) -> set[tuple[str, int, int]]:
    """Source keys of the dead letters (each must be the garbage record, whatever the retries)."""
    out = set()
    for r in _dead_letters(settings):
        assert r.value == GARBAGE
        h = {k: v.decode() for k, v in r.headers}
        out.add((h["source.topic"][len(settings.topic_prefix):], int(h["source.partition"]), int(h["source.offset"])))
    return out


def test_duckdb_sink_killed_and_restarted(kafka_env, tmp_path: Path) -> None:
    source = _load_fixture(kafka_env)
    wh = tmp_path / "w.duckdb"
    args = ["duckdb", "--warehouse", str(wh), "--batch-size", "900"]
    _assert_killed_at(_sink(args, "after_flush:2"), "after_flush:2")
    durable = _warehouse_count(wh)
    assert 0 < durable < len(source) - 1, (durable, len(source))  # two batches flushed, the rest not
    _assert_killed_at(_sink(args, "before_flush:2"), "before_flush:2")
    assert durable <= _warehouse_count(wh) < len(source) - 1  # the restart's second batch was never flushed
    done = _sink(args, None)
    assert done.returncode == 0, done.stderr[-2000:]
    con = duckdb.connect(str(wh), read_only=True)
    try:
        sunk = sorted(con.execute('SELECT topic, "partition", "offset" FROM events').fetchall())
        assert len(sunk) == len(set(sunk))
        dead = _dead_keys(kafka_env)
        assert len(dead) == 1
        assert sunk == [k for k in source if k not in dead]
        for period in ("2026-04", "2026-05"):
            rows = con.execute(
                "SELECT * FROM statements WHERE period = ? ORDER BY ALL", [period]
            ).fetchall()
            assert to_csv([StatementLine(*r) for r in rows]) == (FIXTURES / f"royalties-sample-{period}.csv").read_text()
    finally:
        con.close()


def _warehouse_count(path: Path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM events").fetchall()[0][0]
    finally:
        con.close()


def test_parquet_sink_killed_from_outside_while_working(kafka_env, tmp_path: Path) -> None:
    source = _load_fixture(kafka_env)
    archive = tmp_path / "archive"
    # small batches: many flushes, so the kill lands between the first file and the last
    args = PLAYLOG + ["sink", "parquet", "--archive", str(archive), "--batch-size", "100"]
    env = {k: v for k, v in os.environ.items() if k != "PLAYLOG_SINK_FAULT"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not any(archive.rglob("*.parquet")):
        time.sleep(0.05)
    # the kill must land while it works: it has written something and is still running
    assert proc.poll() is None, f"the sink exited with {proc.returncode} before it could be killed mid-write"
    assert any(archive.rglob("*.parquet")), "the sink wrote nothing within 120 s"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    at_kill = len(_archive_keys(archive))
    assert at_kill < len(source) - 1, "the sink had archived everything (all but the garbage record): not mid-write"
    done = _sink(["parquet", "--archive", str(archive), "--batch-size", "300"], None)
    assert done.returncode == 0, done.stderr[-2000:]
    sunk = _archive_keys(archive)
    assert len(sunk) == len(set(sunk))
    dead = _dead_keys(kafka_env)
    assert len(dead) == 1
    assert sunk == [k for k in source if k not in dead]
