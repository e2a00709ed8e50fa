"""benchmarks/cpu.py reads CPU seconds from /proc: checked against the kernel's other account of the
same time (os.times for this process, resource usage of a reaped child)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.cpu import cpu_seconds, pids_with_arg


def test_a_process_cpu_matches_its_own_os_times() -> None:
    # in a fresh interpreter: this one may have children (a session broker) that count in its tree
    out = subprocess.run([sys.executable, "-c", """
import os, time
from benchmarks.cpu import cpu_seconds
end = time.process_time() + 0.3
while time.process_time() < end: pass
t = os.times()
print(cpu_seconds([os.getpid()]), t.user + t.system)
"""], capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2]).stdout
    mine, theirs = map(float, out.split())
    assert theirs >= 0.3 and abs(mine - theirs) < 0.05, out


def test_a_child_counts_in_its_parents_tree_and_is_found_by_its_arguments() -> None:
    marker = "cpu-test-marker-7f3a"
    child = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
end = time.process_time() + 0.5
while time.process_time() < end: pass
sys.stdin.read()  # {marker}
"""], stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while cpu_seconds([child.pid]) < 0.45 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pids_with_arg(marker) == [child.pid]
        alone, tree = cpu_seconds([child.pid]), cpu_seconds([os.getpid()])
        assert 0.45 <= alone < 2.0
        own = os.times()
        assert tree >= alone + 0.9 * (own.user + own.system)  # the parent's tree holds the child's time
    finally:
        child.communicate(b"")
    assert cpu_seconds([child.pid]) == 0.0  # gone
