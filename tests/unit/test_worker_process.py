"""``WorkerProcess.kill()`` is the SIGKILL the crash tests rely on: it must kill a running worker
(and its process group) and must refuse, loudly, to "kill" a worker that had already exited, so a
test never believes it crashed a process that was not there."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.settings import Settings
from devstack.workers import WorkerProcess


def _worker(tmp_path: Path, code: str) -> WorkerProcess:
    """A WorkerProcess whose process is a stand-in (no broker needed), in its own group like a worker."""
    w = WorkerProcess(Settings(data_dir=tmp_path), tmp_path, name="w1")
    w.proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    return w


def test_kill_sigkills_a_running_worker_and_its_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # the stand-in starts a grandchild in its group (as the worker starts its plays stage)
    w = _worker(tmp_path, "import subprocess, sys, time, pathlib; "
                          "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
                          f"pathlib.Path({str(pid_file)!r}).write_text(str(c.pid)); time.sleep(60)")
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and w.alive()
        time.sleep(0.05)
    grandchild = int(pid_file.read_text())
    w.kill()
    assert w.proc.returncode == -signal.SIGKILL
    assert not w.alive()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{grandchild}").exists() and "Z" not in _state(grandchild):
        assert time.monotonic() < deadline, "the worker's process group outlived the kill"
        time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


@pytest.mark.parametrize(("code", "status"), [("raise SystemExit(3)", 3), ("pass", 0)])
def test_kill_of_a_worker_that_had_already_exited_raises(tmp_path: Path, code: str, status: int) -> None:
    w = _worker(tmp_path, code)
    w.proc.wait(30)
    with pytest.raises(RuntimeError, match=rf"\bw1\b.*\b{status}\b"):
        w.kill()


def test_a_second_kill_raises(tmp_path: Path) -> None:
    w = _worker(tmp_path, "import time; time.sleep(60)")
    w.kill()
    with pytest.raises(RuntimeError, match=rf"\bw1\b.*-{int(signal.SIGKILL)}\b"):
        w.kill()


def test_kill_of_a_worker_never_started_raises(tmp_path: Path) -> None:
    w = WorkerProcess(Settings(data_dir=tmp_path), tmp_path, name="w1")
    with pytest.raises(RuntimeError, match=r"\bw1\b"):
        w.kill()
