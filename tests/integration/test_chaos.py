"""Chaos: several workers, a sink and their plays stages killed on a seeded schedule (SIGKILL,
SIGTERM, SIGSTOP/SIGCONT, wiped local state, a kill during recovery), then every disk lost at once;
the views must be rebuilt from the log with nothing lost and nothing counted twice.

The schedule and its oracle are in tests/support/chaos.py. ``make test`` runs one bounded run
(3 workers, 10 hits); ``make soak`` runs more seeds and longer schedules (PLAYLOG_CHAOS_SEEDS,
PLAYLOG_CHAOS_KILLS).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.chaos import ACTIONS, ChaosRun, archive_keys, expected_statement, replay_diff_live
from topics.consumer import iter_records
from topics.topic_catalog import source_topics

SEEDS = [int(s) for s in os.environ.get("PLAYLOG_CHAOS_SEEDS", "7").split(",") if s.strip()]
KILLS = int(os.environ.get("PLAYLOG_CHAOS_KILLS", "10"))


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_chaos_schedule_then_every_disk_lost(kafka_env, tmp_path: Path, seed: int) -> None:
    run = ChaosRun(kafka_env, tmp_path, seed=seed, workers=3, kills=KILLS)
    fresh = None
    try:
        report = run.run()
        assert len(run.plan) == KILLS >= 10 and set(run.plan) == set(ACTIONS)  # every kind of hit, 10 or more
        assert report.ok, report.summary() + "\n" + "\n".join(run.log)

        # the audit agrees with the live view
        proc = replay_diff_live(kafka_env, run.procs, tmp_path / "replay.csv")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "replay matches the live statement" in proc.stderr
        assert (tmp_path / "replay.csv").read_text() == expected_statement("2026-05")

        # the sink, killed on the schedule too, holds every source record exactly once
        p = kafka_env.topic_prefix
        source = sorted((r.topic[len(p):], r.partition, r.offset)
                        for r in iter_records(kafka_env, [p + t.name for t in source_topics()]))
        sunk = archive_keys(run.archive)
        assert len(sunk) == len(set(sunk)), "a record archived twice"
        assert sunk == source

        # every worker's disk lost at once: one fresh worker rebuilds every view from the log
        for w in run.procs:
            w.kill()
            shutil.rmtree(w.state_dir, ignore_errors=True)
        fresh = run.worker("w-fresh").start()
        report = run.settle("one fresh worker, every disk lost", [fresh])
        assert report.ok and report.owner == "w-fresh", report.summary() + "\n" + "\n".join(run.log)
    finally:
        for w in [*run.procs, *([fresh] if fresh else [])]:
            w.stop()
        if run.sink is not None:
            run.sink.stop()
