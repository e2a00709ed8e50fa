"""Run `playlog worker` subprocesses against the session broker and wait for them to catch up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playlog.config import Settings
from topics.lag import group_lag
from topics.localkafka import free_port

SOURCE = ["listening", "catalog", "rights", "finance", "users", "player", "playlists", "royalty.inputs"]


class WorkerProcess:
    def __init__(self, settings: Settings, log_dir: Path, name: str = "w1"):
        self.settings = settings
        self.port = free_port()
        self.name = name
        self.log = log_dir / f"worker-{name}-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WorkerProcess:
        env = {**os.environ, "PLAYLOG_BOOTSTRAP_SERVERS": self.settings.bootstrap_servers,
               "PLAYLOG_DATA_DIR": str(self.settings.data_dir), "PLAYLOG_TOPIC_PREFIX": self.settings.topic_prefix}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "playlog.cli", "worker", "--web-port", str(self.port), "--name", self.name,
             "--loglevel", "info"],
            env=env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, start_new_session=True,  # noqa: SIM115
        )
        return self

    def status(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"{self.url}/status", timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def statement(self, period: str) -> str:
        with urllib.request.urlopen(f"{self.url}/royalties/{period}", timeout=30) as r:
            return r.read().decode()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_caught_up(settings: Settings, worker: WorkerProcess, timeout: float = 180.0) -> None:
    """Until the worker owns the royalty view and its group has no lag on any source topic (twice in a row)."""
    group = f"{settings.topic_prefix}worker"
    topics = [settings.topic_prefix + t for t in SOURCE]
    deadline = time.monotonic() + timeout
    streak = 0
    last = None
    while time.monotonic() < deadline:
        assert worker.proc is not None and worker.proc.poll() is None, f"worker died; see {worker.log}"
        st = worker.status()
        last = group_lag(settings, group, topics)
        if st and st.get("owner") and not any(last.values()):
            streak += 1
            if streak >= 2:
                return
        else:
            streak = 0
        time.sleep(1.0)
    raise AssertionError(f"worker did not catch up in {timeout:.0f}s: status={worker.status()} lag={last}; see {worker.log}")
