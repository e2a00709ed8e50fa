"""Stopping the local service processes we start (broker, ClickHouse, workers)."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_process(proc: subprocess.Popen | None, timeout: float, *, group: bool = False) -> None:
    """Graceful stop: SIGTERM, then SIGKILL after ``timeout`` seconds (the whole process group if ``group``)."""
    if proc is None or proc.poll() is not None:
        return

    def send(sig: int) -> None:
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)

    send(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait(10)
