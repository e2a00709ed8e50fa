"""Batch jobs that ``playlog up`` runs on a schedule: today ``playlog batch recs`` (the feature store)
every ``PLAYLOG_BATCH_RECS_EVERY`` seconds (0: never).

A run is a one-shot child process (its output appended to ``logs/batch-recs.log``), not a
supervised service: its exit is the normal end, so the supervisor does not watch it; a failed run is
said (with the tail of its log) and the next one is due an interval later, as after a success. A run
still going when the next is due is left alone (runs never overlap). The first run is due one interval
after the stack started (``playlog batch recs`` computes the features at once).
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from devstack.supervisor import playlog_argv, stop_process

log = logging.getLogger(__name__)


class BatchSchedule:
    """Start ``argv`` every ``every`` seconds (``tick()`` from the watch loop); ``stop()`` ends a run."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], log_path: Path, every: int,
                 say: Callable[[str], None] = log.info, clock: Callable[[], float] = time.monotonic,
                 spawn: Callable[..., subprocess.Popen] = subprocess.Popen) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.log_path = Path(log_path)
        self.every = every
        self.say = say
        self.clock = clock
        self.spawn = spawn
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.failures = 0
        self.next_at = clock() + every

    @property
    def enabled(self) -> bool:
        return self.every > 0

    def tick(self) -> None:
        if not self.enabled:
            return
        if self.proc is not None:
            rc = self.proc.poll()
            if rc is None:
                return  # still running: never two at once
            self.proc = None
            if rc != 0:
                self.failures += 1
                self.say(f"{self.name}: run {self.runs} failed with exit code {rc}; see {self.log_path}\n"
                         f"{self._tail()}")
            else:
                log.info("%s: run %d done", self.name, self.runs)
        now = self.clock()
        if now < self.next_at:
            return
        self.next_at = now + self.every
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = self.spawn(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.runs += 1
        log.info("%s: run %d started (pid %d)", self.name, self.runs, self.proc.pid)

    def _tail(self, lines: int = 8) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 15.0, group=True)
            self.proc = None


def recs_argv(sinks: Sequence[str], data_dir: Path) -> list[str]:
    """``playlog batch recs`` as ``playlog up`` runs it: on the default warehouse file, unless the stack
    runs the DuckDB sink, which holds that file (DuckDB has one writer per file): then on a file and
    a consumer group of its own."""
    args = ["batch", "recs"]
    if "duckdb" in sinks:
        args += ["--warehouse-file", str(Path(data_dir) / "recs-warehouse.duckdb"), "--group", "playlog-batch-recs"]
    return playlog_argv(*args)
