"""``playlog worker`` processes under the supervisor, and waiting for them to catch up (up, demo, benchmarks, tests)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from core.errors import PlaylogError
from core.settings import Settings
from devstack.supervisor import Child, free_port, playlog_argv
from topics.lag import group_lag

SOURCE_TOPICS = ["listening", "catalog", "rights", "finance", "users", "player", "playlists", "royalty.inputs",
                 "royalty.plays", "royalty.tallies"]


class WorkerProcess(Child):
    """One ``playlog worker`` subprocess with its own name, web port and state dir."""

    def __init__(self, settings: Settings, log_dir: Path, name: str = "w1", port: int | None = None,
                 extra_args: Sequence[str] = ()):
        self.settings = settings
        self.port = port or free_port()
        argv = playlog_argv("worker", "--web-port", str(self.port), "--name", name, "--loglevel", "info",
                            *extra_args)
        super().__init__(name, argv, settings.to_env(), Path(log_dir) / f"worker-{name}.log",
                         health_url=f"http://127.0.0.1:{self.port}/status")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state_dir(self) -> Path:
        """Where this worker keeps its RocksDB tables (see worker/app.py)."""
        prefix = self.settings.topic_prefix.rstrip(".") or "default"
        return Path(self.settings.data_dir) / "worker" / f"{prefix}-{self.name}"

    def start(self) -> WorkerProcess:
        super().start()
        return self

    def status(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"{self.url}/status", timeout=2) as r:  # noqa: S310 (loopback)
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def liveness(self) -> tuple[str, str]:
        """("live" | "stalled" | "silent", detail) from the worker's ``/livez``."""
        try:
            with urllib.request.urlopen(f"{self.url}/livez", timeout=3) as r:  # noqa: S310 (loopback)
                return "live", r.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            return ("stalled", body) if exc.code == 503 else ("silent", f"HTTP {exc.code}")
        except (OSError, ValueError) as exc:
            return "silent", str(exc)

    def statement(self, period: str) -> str:
        with urllib.request.urlopen(f"{self.url}/royalties/{period}", timeout=60) as r:  # noqa: S310
            return r.read().decode()

    def stop(self, timeout: float = 30.0) -> None:
        super().stop(timeout)


def source_lag(settings: Settings) -> dict[str, int]:
    """Records not yet processed, per source topic (the Faust group; for listening the larger lag of the
    plays stage and the taste stage)."""
    p = settings.topic_prefix
    lag = group_lag(settings, f"{p}worker", [p + t for t in SOURCE_TOPICS if t != "listening"])
    lag.update(group_lag(settings, f"{p}plays", [p + "listening"]))
    for topic, n in group_lag(settings, f"{p}taste", [p + "listening"]).items():
        lag[topic] = max(lag.get(topic, 0), n)
    return lag


def wait_caught_up(settings: Settings, workers: list[WorkerProcess], timeout: float = 180.0) -> dict[str, int]:
    """Until one worker owns the royalty money step, the group has no lag anywhere and no worker
    has anything left to publish (twice in a row): the statement then covers every record."""
    deadline = time.monotonic() + timeout
    streak = 0
    last: dict[str, int] = {}
    while time.monotonic() < deadline:
        for w in workers:
            if not w.alive():
                raise PlaylogError(f"worker {w.name} died; see {w.log}")
        statuses = [w.status() for w in workers]
        owners = [st for st in statuses if st and st.get("owner")]
        settled = all(st and not st.get("pending") for st in statuses)
        last = source_lag(settings)
        if owners and settled and not any(last.values()):
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
