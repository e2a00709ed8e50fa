"""``playlog demo`` end to end in a temporary data dir on free ports: the summary's numbers are
consistent, the report is written, and no process the demo started survives it (nor a Ctrl-C)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack.kafka import free_port

ROOT = Path(__file__).resolve().parents[2]
# small masters keep the first (encoding) run short; over 30 s so plays can be streams
SMALL = ["--tracks", "60", "--audio-tracks", "2", "--audio-seconds", "32", "--listeners", "150"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo")


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYLOG_") or k == "PLAYLOG_KAFKA_JARS"}
    env.update({
        "PLAYLOG_DATA_DIR": str(data_dir),
        "PLAYLOG_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "PLAYLOG_KAFKA_CONTROLLER_PORT": str(free_port()),
        "PLAYLOG_CDN_PORT": str(free_port()),
        "PLAYLOG_API_PORT": str(free_port()),
    })
    return env


def _survivors(marker: str) -> list[str]:
    """Processes (other than this one) whose command line or environment mentions ``marker``."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmd or marker.encode() in env:
            shown = cmd.replace(b"\0", b" ").decode(errors="replace")[:200]
            out.append(f"{pid}: {shown}")
    return out


def _wait_gone(marker: str, timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    left = _survivors(marker)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = _survivors(marker)
    return left


def test_demo_summary_is_consistent_and_nothing_survives(data_dir: Path) -> None:
    summary_path = data_dir / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-m", "playlog.cli", "demo", "--seconds", "15", *SMALL, "--json-summary", str(summary_path)],
        env=_env(data_dir), capture_output=True, text=True, timeout=600, cwd=data_dir,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    s = json.loads(summary_path.read_text())
    sim, roy = s["simulation"], s["royalties"]

    # the listeners went through the API and produced listening events
    assert s["via"] == "api"
    assert sim["events"] > 100 and sim["plays"] > 20
    assert sim["completed"] + sim["skipped"] == sim["plays"]
    assert sim["errors"] == 0
    assert {"home", "manifest", "play", "events"} <= set(sim["latency_ms"])
    assert 0.0 <= sim["rebuffer_ratio"] < 1.0
    server = s["api"]["server_latency_ms"]  # the API's own histogram agrees that it was called
    assert server["/v1/events"]["n"] > 0 and server["/v1/playback/{track_id}/manifest"]["n"] > 0

    # royalties: every (period, country, product) with streams sums exactly to its pool
    assert roy["lines"] > 0 and roy["groups"]
    for g in roy["groups"]:
        assert g["paid_micros"] == g["pool_micros"] > 0, g
    assert roy["consistent"] is True
    assert roy["paid_micros"] == roy["pools_with_streams_micros"]
    # a stream is a play: never more streams than plays (per track too)
    assert 0 < roy["streams"] <= sim["plays"]
    for track, n in roy["streams_by_track"].items():
        assert n <= s["plays_by_track"].get(track, 0), track
    # the statement file matches the figures
    lines = []
    for f in data_dir.glob("demo/statement-*.csv"):
        lines += f.read_text().splitlines()[1:]
    assert sum(int(ln.rsplit(",", 1)[1]) for ln in lines) == roy["paid_micros"]

    # the worker caught up; its views hold every listener
    assert s["lag"]["final_lag"] == 0
    assert s["views"]["view.users"] == s["listeners"]

    # CDN: bytes served, a signed Range request answered 206 with a Content-Range
    assert s["cdn"]["bytes_served"] > 0 and sim["bytes"] > 0
    assert sim["status_206"] > 0
    rf = s["range_fetch"]
    assert rf["status"] == 206 and rf["bytes"] == 4096
    assert re.fullmatch(r"bytes 0-4095/\d+", rf["content_range"])
    assert 0.0 <= s["cdn"]["hit_ratio"] <= 1.0

    # the report exists where the summary says
    report = Path(s["report"])
    assert report.is_file() and report.stat().st_size > 2000
    assert report.parent.resolve() == (data_dir / "demo").resolve()
    assert "report" in proc.stdout and str(report) in proc.stdout

    # nothing the demo started is left
    for pid in s["pids"]:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid), pid
    assert _wait_gone(str(data_dir), timeout=5) == []


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    except OSError:
        return True


def test_ctrl_c_stops_everything(data_dir: Path) -> None:
    """SIGINT to the demo's process group (what Ctrl-C in a terminal sends) mid-simulation."""
    log = data_dir / "ctrl-c.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "playlog.cli", "demo", "--seconds", "120", *SMALL],
            env=_env(data_dir), stdout=out, stderr=subprocess.STDOUT, cwd=data_dir, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while "simulating" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        assert "simulating" in log.read_text(), log.read_text()[-3000:]
        time.sleep(3)
        assert len(_survivors(str(data_dir))) >= 4  # broker, worker, CDN, API (and the demo itself)
        os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait(90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert rc != 0
    assert "interrupted" in text and "Traceback" not in text
    assert _wait_gone(str(data_dir)) == []
