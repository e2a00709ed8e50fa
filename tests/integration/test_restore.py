"""Disaster recovery: the Parquet archive rebuilds the source topics of an empty cluster (same
topic, partition, key and order), after which a fresh worker's statement is the original's, and a
second restore into the now non-empty cluster is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from devstack.workers import WorkerProcess, wait_caught_up
from schemas.codec import default_codec
from topics.admin import create_topics
from topics.consumer import iter_records
from topics.topic_catalog import source_topics

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
PLAYLOG = [sys.executable, "-m", "playlog"]


def _run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*PLAYLOG, *args], env=env, capture_output=True, text=True, timeout=300)


def _log(settings) -> dict[tuple[str, int], list[tuple[bytes | None, str, str]]]:
    """Per source (topic, partition): (key, type, event_id) in offset order."""
    codec = default_codec()
    out: dict[tuple[str, int], list] = {}
    names = [settings.topic_prefix + t.name for t in source_topics()]
    for r in iter_records(settings, names):
        ev = codec.decode(r.value)
        out.setdefault((r.topic[len(settings.topic_prefix):], r.partition), []).append(
            (r.key, ev["type"], ev["event_id"]))
    return out


def test_restore_from_the_archive_rebuilds_topics_views_and_statement(kafka_env, tmp_path: Path) -> None:
    original = kafka_env
    env = {**os.environ}
    create_topics(original)
    r = _run(env, "produce", str(FIXTURES / "royalties-sample.jsonl"))
    assert r.returncode == 0, r.stderr
    archive = tmp_path / "archive"
    r = _run(env, "sink", "parquet", "--archive", str(archive))
    assert r.returncode == 0, r.stderr
    before = _log(original)
    assert sum(len(v) for v in before.values()) > 6000

    # an empty "cluster": the same broker under a prefix nothing has written to
    restored = replace(original, topic_prefix=original.topic_prefix.rstrip(".") + "r.",
                       data_dir=tmp_path / "restored")
    renv = restored.to_env()
    r = _run(renv, "restore", "--archive", str(archive), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert f"restored {sum(len(v) for v in before.values())} records" in r.stdout
    assert _log(restored) == before  # same topic, partition, key and order, record for record

    w = WorkerProcess(restored, tmp_path / "logs").start()
    try:
        wait_caught_up(restored, [w], timeout=240)
        for period in ("2026-04", "2026-05"):
            want = (FIXTURES / f"royalties-sample-{period}.csv").read_text()
            assert w.statement(period) == want, period
    finally:
        w.stop()

    again = _run(renv, "restore", "--archive", str(archive), "--no-progress")
    assert again.returncode == 2
    assert "empty cluster only" in again.stderr and "Traceback" not in again.stderr


def test_restore_of_something_that_is_not_an_archive_exits_2(kafka_env, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = _run({**os.environ}, "restore", "--archive", str(tmp_path / "empty"))
    assert r.returncode == 2 and "is it the archive?" in r.stderr, r.stderr
