"""``playlog worker`` and ``playlog royalties``."""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import click

from core.errors import PlaylogError
from core.settings import load, require_secrets

# The worker's web endpoint binds loopback only (worker/app.py, web_bind); were it to bind beyond,
# the development PII master key would be refused there (core.settings.require_secrets).
WEB_BIND = "127.0.0.1"
WORKER_SECRETS = ("PLAYLOG_PII_MASTER_KEY",)

log = logging.getLogger(__name__)

PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@click.command("worker")
@click.option("--web-port", type=int, default=6066, show_default=True,
              help="Port of this worker's web endpoint (/status, /royalties/PERIOD); one per worker.")
@click.option("--name", default=None, help="Worker name (its RocksDB state dir); default w<web-port>.")
@click.option("--loglevel", default="warning", show_default=True)
@click.option("--plays-stage", type=click.Choice(["process", "faust", "none"]), default="process", show_default=True,
              help="Where the listening -> play summaries step runs: its own confluent-kafka process (fast), "
                   "a Faust agent, or not in this worker.")
@click.option("--taste-stage", type=click.Choice(["process", "none"]), default="process", show_default=True,
              help="Run the listening -> view.taste stage (worker/taste_stage.py) in its own process, or not here.")
def worker_command(web_port: int, name: str | None, loglevel: str, plays_stage: str, taste_stage: str) -> None:
    """Run one stream-processing worker in the foreground until Ctrl-C.

    Several workers (each with its own --web-port) share the partitions of the source topics.
    """
    from faust.worker import Worker

    from topics.lag import init_group_offsets
    from worker import plays_stage as stage
    from worker import taste_stage as taste_stage_mod
    from worker.app import create_app

    settings = load()
    require_secrets(settings, WEB_BIND, WORKER_SECRETS, "playlog worker")
    faust_topics = ["catalog", "rights", "finance", "users", "player", "playlists", "royalty.inputs",
                    "royalty.plays", "royalty.tallies"]
    if plays_stage == "faust":
        faust_topics.append("listening")
    init_group_offsets(settings, f"{settings.topic_prefix}worker", [settings.topic_prefix + t for t in faust_topics])
    from devstack.supervisor import run_tied_to_parent

    def starter(target: Callable[..., None], what: str) -> Callable[[], multiprocessing.process.BaseProcess]:
        def start_stage() -> multiprocessing.process.BaseProcess:
            child = multiprocessing.get_context("spawn").Process(  # dies with this worker, even on SIGKILL
                target=run_tied_to_parent, args=(os.getpid(), target, settings), name=what, daemon=True)
            child.start()
            return child
        return start_stage

    keepers = []
    if plays_stage == "process":
        keepers.append(KeepRunning("plays stage", starter(stage.run_process, "plays-stage")).start())
    if taste_stage == "process":
        keepers.append(KeepRunning("taste stage", starter(taste_stage_mod.run_process, "taste-stage")).start())
    try:
        app = create_app(settings, web_port=web_port, name=name or f"w{web_port}", faust_plays=plays_stage == "faust")
        worker = Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
        worker.execute_from_commandline()
    finally:
        for keeper in keepers:
            keeper.stop()


class KeepRunning:
    """A child process restarted whenever it exits (the plays stage: killed alone, it comes back; the
    worker would otherwise leave its share of the listening partitions to the others, or to nobody)."""

    def __init__(self, what: str, start: Callable[[], multiprocessing.process.BaseProcess], every: float = 1.0):
        self.what = what
        self._start = start
        self.every = every
        self.child = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name=f"keep {what}", daemon=True)

    def start(self) -> KeepRunning:
        self.child = self._start()
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stopping.wait(self.every):
            with self._lock:
                if self._stopping.is_set() or self.child.is_alive():
                    continue
                if self.child.exitcode in (0, -signal.SIGTERM):  # asked to stop (with its worker): not a crash
                    log.info("%s stopped (exit code %s)", self.what, self.child.exitcode)
                    return
                self.restarts += 1
                log.warning("%s exited with code %s: started again (restart %d)", self.what, self.child.exitcode,
                            self.restarts)
                self.child = self._start()

    def stop(self, timeout: float = 15.0) -> None:
        with self._lock:
            self._stopping.set()
            child = self.child
        if child is not None and child.is_alive():
            child.terminate()
            child.join(timeout)


@click.command("royalties")
@click.option("--period", required=True, help="The statement period, YYYY-MM.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Statement file (CSV, or .parquet).")
def royalties_command(period: str, out: str) -> None:
    """Write the live royalty view's statement for PERIOD (format of spec/royalties.md).

    Asks the running worker that holds the view (PLAYLOG_WORKER_URLS, default http://127.0.0.1:6066).
    """
    from processors.statement import parse_csv
    from worker.client import fetch_statement_csv

    if not PERIOD.match(period):
        raise PlaylogError(f"--period must look like 2026-05, got {period!r}")
    text = fetch_statement_csv(load(), period)
    path = Path(out)
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        lines = parse_csv(text)
        cols = ["period", "country", "product", "rightsholder_id", "track_id", "streams", "amount_micros"]
        pq.write_table(pa.table({c: [getattr(r, c) for r in lines] for c in cols}), path)
    else:
        path.write_bytes(text.encode("utf-8"))
    n = max(0, text.count("\n") - 1)
    click.echo(f"{n} statement line(s) for {period} written to {out}", err=True)
    sys.exit(0)
