"""Run ``playlog worker`` processes and wait for them to catch up (demo, benchmarks, tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from core.errors import PlaylogError
from core.settings import Settings
from devstack.kafka import free_port
from devstack.supervisor import stop_process
from topics.lag import group_lag

SOURCE_TOPICS = ["listening", "catalog", "rights", "finance", "users", "player", "playlists", "royalty.inputs"]


class WorkerProcess:
    """One ``playlog worker`` subprocess with its own web port and state dir."""

    def __init__(self, settings: Settings, log_dir: Path, name: str = "w1", port: int | None = None):
        self.settings = settings
        self.port = port or free_port()
        self.name = name
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        self.log = Path(log_dir) / f"worker-{name}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WorkerProcess:
        env = {**os.environ, "PLAYLOG_BOOTSTRAP_SERVERS": self.settings.bootstrap_servers,
               "PLAYLOG_DATA_DIR": str(self.settings.data_dir), "PLAYLOG_TOPIC_PREFIX": self.settings.topic_prefix}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "playlog.cli", "worker", "--web-port", str(self.port), "--name", self.name,
                 "--loglevel", "info"],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        return self

    def status(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"{self.url}/status", timeout=2) as r:  # noqa: S310 (loopback)
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def statement(self, period: str) -> str:
        with urllib.request.urlopen(f"{self.url}/royalties/{period}", timeout=60) as r:  # noqa: S310
            return r.read().decode()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
            self.proc.wait(10)  # type: ignore[union-attr]

    def stop(self, timeout: float = 30.0) -> None:
        stop_process(self.proc, timeout, group=True)


def source_lag(settings: Settings) -> dict[str, int]:
    """Records not yet processed, per source topic (the Faust group, and the plays stage for listening)."""
    p = settings.topic_prefix
    lag = group_lag(settings, f"{p}worker", [p + t for t in SOURCE_TOPICS if t != "listening"])
    lag.update(group_lag(settings, f"{p}plays", [p + "listening"]))
    return lag


def wait_caught_up(settings: Settings, workers: list[WorkerProcess], timeout: float = 180.0) -> dict[str, int]:
    """Until one worker owns the royalty view and the group has no lag anywhere (twice in a row)."""
    deadline = time.monotonic() + timeout
    streak = 0
    last: dict[str, int] = {}
    while time.monotonic() < deadline:
        for w in workers:
            if not w.alive():
                raise PlaylogError(f"worker {w.name} died; see {w.log}")
        owners = [w for w in workers if (st := w.status()) and st.get("owner")]
        last = source_lag(settings)
        if owners and not any(last.values()):
            streak += 1
            if streak >= 2:
                return last
        else:
            streak = 0
        time.sleep(0.5)
    raise PlaylogError(f"workers did not catch up within {timeout:.0f}s (lag {last}); see {workers[0].log}")


def owner(workers: list[WorkerProcess]) -> WorkerProcess:
    for w in workers:
        st = w.status()
        if st and st.get("owner"):
            return w
    raise PlaylogError("no worker holds the royalty view")
