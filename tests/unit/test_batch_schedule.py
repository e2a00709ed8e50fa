"""``playlog up``'s batch schedule (devstack/batch.py) on a fake clock and a fake process: due one
interval after start, never two runs at once, a failure said and the next run still due; and the
setting that drives it (PLAYLOG_BATCH_RECS_EVERY)."""

from __future__ import annotations

import sys

import pytest

from core.settings import load
from devstack.batch import BatchSchedule, recs_argv


class FakeProc:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rc: int | None = None

    def poll(self) -> int | None:
        return self.rc


class Spawner:
    def __init__(self) -> None:
        self.procs: list[FakeProc] = []

    def __call__(self, argv, **kwargs) -> FakeProc:
        assert kwargs["start_new_session"] is True
        self.procs.append(FakeProc(1000 + len(self.procs)))
        return self.procs[-1]


def test_runs_every_interval_never_overlapping_and_says_failures(tmp_path) -> None:
    now = [100.0]
    said: list[str] = []
    spawn = Spawner()
    s = BatchSchedule("batch recs", ["x"], {}, tmp_path / "b.log", 60, say=said.append, clock=lambda: now[0],
                      spawn=spawn)
    s.tick()
    assert spawn.procs == []  # not before one interval
    now[0] = 160.0
    s.tick()
    assert len(spawn.procs) == 1 and s.runs == 1
    now[0] = 500.0  # long overdue, but the first run is still going
    s.tick()
    assert len(spawn.procs) == 1
    spawn.procs[0].rc = 3
    (tmp_path / "b.log").write_text("Traceback\nerror: broker down\n")
    s.tick()  # the failure is reported and the overdue run starts
    assert s.failures == 1 and "exit code 3" in said[0] and "broker down" in said[0]
    assert len(spawn.procs) == 2 and s.next_at == 560.0
    spawn.procs[1].rc = 0
    now[0] = 559.0
    s.tick()
    assert len(spawn.procs) == 2 and s.failures == 1
    now[0] = 560.0
    s.tick()
    assert len(spawn.procs) == 3


def test_zero_turns_it_off(tmp_path) -> None:
    spawn = Spawner()
    s = BatchSchedule("b", ["x"], {}, tmp_path / "b.log", 0, clock=lambda: 1e9, spawn=spawn)
    s.tick()
    assert not s.enabled and spawn.procs == []


def test_the_setting_and_the_command_line(tmp_path) -> None:
    assert load({}).batch_recs_every == 3600
    assert load({"PLAYLOG_BATCH_RECS_EVERY": "0"}).batch_recs_every == 0
    assert load({"PLAYLOG_BATCH_RECS_EVERY": "90"}).to_env({})["PLAYLOG_BATCH_RECS_EVERY"] == "90"
    with pytest.raises(ValueError, match="PLAYLOG_BATCH_RECS_EVERY"):
        load({"PLAYLOG_BATCH_RECS_EVERY": "-1"})
    assert recs_argv((), tmp_path) == [sys.executable, "-m", "playlog", "batch", "recs"]
    argv = recs_argv(("parquet", "duckdb"), tmp_path)
    assert argv[-4:] == ["--warehouse-file", str(tmp_path / "recs-warehouse.duckdb"), "--group", "playlog-batch-recs"]
