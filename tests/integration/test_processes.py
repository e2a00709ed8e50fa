"""Processes die with what started them: a SIGKILLed worker takes its plays-stage child with it
(parent-death signal), and SIGTERM to ``playlog broker`` stops the broker's JVM too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from devstack.supervisor import free_port
from devstack.workers import WorkerProcess
from tests.integration.test_up import cmdline, descendants, running


def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_a_sigkilled_worker_takes_its_plays_stage_child_with_it(kafka_env, tmp_path: Path) -> None:
    from topics.admin import create_topics

    create_topics(kafka_env)
    w = WorkerProcess(kafka_env, tmp_path).start()
    try:
        w.wait_healthy(120)
        _wait(lambda: any("multiprocessing" in cmdline(p) for p in descendants(w.pid)), 60, "no plays stage")
        stage = [p for p in descendants(w.pid) if "multiprocessing" in cmdline(p)]
        assert stage
        os.kill(w.pid, signal.SIGKILL)  # the worker alone, not its process group
        w.proc.wait(10)
        _wait(lambda: not any(running(p) for p in stage), 30, f"plays stage outlived its worker: {stage}")
    finally:
        w.stop()


def test_sigterm_to_playlog_broker_stops_the_broker(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYLOG_")}
    env.update(PLAYLOG_DATA_DIR=str(tmp_path / "data"), PLAYLOG_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}",
               PLAYLOG_KAFKA_CONTROLLER_PORT=str(free_port()))
    log = tmp_path / "broker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "playlog", "broker"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(lambda: "ready on" in log.read_text() or proc.poll() is not None, 120, "broker not ready")
        assert proc.poll() is None, log.read_text()
        java = [p for p in descendants(proc.pid) if "kafka.Kafka" in cmdline(p)]
        assert len(java) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()
        _wait(lambda: not running(java[0]), 30, "the broker JVM outlived `playlog broker`")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
