"""Progress you can see: a worker whose agents stop (fault injection) while records wait is
reported stalled on ``/livez``, and ``playlog up`` restarts it and says so; the restarted
worker catches up and the statement is exact. Its ``/metrics`` gives lag per partition."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.integration.test_up import FIXTURES, PLAYLOG, _env, start_up, wait_ready


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 (loopback)
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:  # the worker is restarting
        return 0, ""


def test_a_stalled_worker_is_seen_and_restarted_by_up(tmp_path: Path) -> None:
    env = _env(tmp_path / "data", workers=1)
    env.update(PLAYLOG_WORKER_FAULT="stall_after:1", PLAYLOG_WORKER_STALL_SECONDS="15")
    worker_url = env["PLAYLOG_WORKER_URLS"]
    proc, log = start_up(tmp_path, env, "--workers", "1", "--no-api", "--no-cdn")
    try:
        wait_ready(proc, log)
        produced = subprocess.run([*PLAYLOG, "produce", str(FIXTURES / "royalties-sample.jsonl")], env=env,
                                  capture_output=True, text=True, timeout=120)
        assert produced.returncode == 0, produced.stderr
        # the fault stops the agents after their first batch: /livez turns 503 while records wait
        seen_stalled = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and seen_stalled is None:
            status, body = _get(f"{worker_url}/livez")
            if status == 503:
                seen_stalled = json.loads(body)
            elif "restarting it" in log.read_text():
                break
            time.sleep(1)
        deadline = time.monotonic() + 180
        while "worker w1: stalled" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        assert seen_stalled is None or (seen_stalled["live"] is False and seen_stalled["lag_owned"] > 0)
        assert (tmp_path / "data" / "worker" / "up-w1" / "fault-stalled").exists()
        # the restarted worker (the fault fires once per state dir) catches up: the exact statement
        want = (FIXTURES / "royalties-sample-2026-05.csv").read_text()
        deadline = time.monotonic() + 240
        got = ""
        while time.monotonic() < deadline:
            status, got = _get(f"{worker_url}/royalties/2026-05")
            if status == 200 and got == want:
                break
            time.sleep(2)
        assert got == want
        deadline = time.monotonic() + 60
        while True:  # the restarted worker's first lag sample
            status, metrics = _get(f"{worker_url}/metrics")
            if status == 200 and 'playlog_worker_sample_timestamp_seconds{worker="w1"} 0.0' not in metrics:
                break
            assert time.monotonic() < deadline, metrics
            time.sleep(1)
        assert 'playlog_worker_lag_records{group="up.worker",owned="true",partition="0",topic="rights"' in metrics
        processed = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                     if line.startswith("playlog_worker_records_processed_total{")]
        assert processed and sum(processed) > 0, metrics  # the held-back batch, processed after the restart
        assert 'playlog_worker_stalled{worker="w1"} 0.0' in metrics
        status, body = _get(f"{worker_url}/livez")
        assert status == 200 and json.loads(body)["live"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    assert "restarting it (restart 1)" in log.read_text()
    # killed, not stopped: a stalled worker need not finish a graceful stop; SIGKILL commits nothing
    # and the batch it held comes again
