"""The one process supervisor: starting, watching and stopping the stack's child processes.

``playlog up``, ``playlog demo``, the tests and the benchmarks all run their children through
:class:`Child` (one ``playlog <verb>`` or other command in its own process group, output to a
log file, a health URL) and :class:`Supervisor` (start in order, watch for a child that dies,
stop in reverse order whatever failed). ``stop_process`` is the graceful-stop primitive the
local broker and ClickHouse runners use too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from core.errors import PlaylogError

log = logging.getLogger(__name__)


def stop_process(proc: subprocess.Popen | None, timeout: float, *, group: bool = False) -> None:
    """Graceful stop: SIGTERM, then SIGKILL after ``timeout`` seconds (the whole process group if ``group``)."""
    if proc is None or proc.poll() is not None:
        if group and proc is not None:
            _killpg(proc.pid, signal.SIGKILL)  # the leader is gone; its group may not be
        return

    def send(sig: int) -> None:
        if group:
            _killpg(proc.pid, sig)
        else:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    send(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait(10)
    if group:
        _killpg(proc.pid, signal.SIGKILL)  # anything the leader left behind in its group


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def die_with_parent(parent_pid: int) -> None:
    """Make the calling process get SIGKILL when its parent dies (Linux ``PR_SET_PDEATHSIG``), so a
    worker's child never outlives a SIGKILLed worker; exits at once if the parent is already gone."""
    import ctypes

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent's stop() still ends its process group
        log.warning("parent-death signal unavailable; this child may outlive a killed parent")
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)


def run_tied_to_parent(parent_pid: int, target: Callable[..., object], *args: object) -> None:
    """A multiprocessing target: :func:`die_with_parent`, then ``target(*args)``."""
    die_with_parent(parent_pid)
    target(*args)


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range of source ports for outgoing connections (Linux; 32768-60999 elsewhere)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = f.read().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def free_server_port(tries: int = 200) -> int:
    """A free loopback port outside the ephemeral range, for a server that is stopped and started
    again on the same port. While it is down, a port of the ephemeral range can be taken by any
    outgoing connection as its source port (or by a client reconnecting to it, which then connects
    to itself), and the server cannot bind it again; ports below the range are never handed out so."""
    import random

    lo = ephemeral_range()[0]
    rng = random.Random()
    for _ in range(tries):
        port = rng.randrange(max(1024, lo - 12000), lo)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()


def playlog_argv(*args: str) -> list[str]:
    """The command line of a ``playlog`` verb run by this interpreter."""
    return [sys.executable, "-m", "playlog", *args]


class ChildDied(PlaylogError):
    """A supervised child exited while it should have been running."""

    exit_code = 1


class Child:
    """One supervised process: its own process group, output appended to ``log``.

    ``health_url``: an HTTP URL that answers 200 once the child is ready (see :meth:`wait_healthy`).
    """

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], log: Path,
                 health_url: str | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.log = Path(log)
        self.health_url = health_url
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self.started_at = 0.0  # time.monotonic() of the last start

    def start(self) -> Child:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.started_at = time.monotonic()
        log.debug("started %s (pid %d): %s", self.name, self.proc.pid, " ".join(self.argv))
        return self

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the child's whole process group; RuntimeError if the child is not running
        (so a chaos schedule never believes it hit a process that had already gone)."""
        if not self.alive():
            raise RuntimeError(f"{self.name} is not running (exit code {self.returncode})")
        os.killpg(self.proc.pid, sig)  # type: ignore[union-attr]

    def kill(self) -> None:
        """SIGKILL the child and its group and reap it; RuntimeError if it had already exited."""
        self.signal(signal.SIGKILL)
        self.proc.wait(10)  # type: ignore[union-attr]

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the group, SIGKILL after ``timeout``; a no-op for a child that never started."""
        stop_process(self.proc, timeout, group=True)

    def wait_healthy(self, timeout: float, want_ok: bool = True) -> float:
        """Until the health URL answers (200 when ``want_ok``, any HTTP answer otherwise); seconds waited."""
        if self.health_url is None:
            raise ValueError(f"{self.name} has no health URL")
        t0 = time.monotonic()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ChildDied(f"{self.name} exited with code {self.returncode} while starting; see {self.log}")
            try:
                with urllib.request.urlopen(self.health_url, timeout=2) as r:  # noqa: S310 (loopback)
                    if r.status == 200:
                        return time.monotonic() - t0
            except urllib.error.HTTPError:
                if not want_ok:
                    return time.monotonic() - t0
            except OSError:
                pass
            time.sleep(0.2)
        raise PlaylogError(f"{self.name} not healthy at {self.health_url} within {timeout:.0f}s; see {self.log}")

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Stoppable:
    """Anything with ``stop()`` (the local broker, ClickHouse): stopped in order with the children."""

    name: str

    def stop(self) -> None:  # pragma: no cover - protocol
        raise NotImplementedError


class Supervisor:
    """Children in start order; stops them all in reverse order, whatever failed."""

    def __init__(self) -> None:
        self.parts: list[Child | Stoppable] = []

    def add(self, part):  # type: ignore[no-untyped-def]
        self.parts.append(part)
        return part

    def children(self) -> list[Child]:
        return [p for p in self.parts if isinstance(p, Child)]

    def dead(self) -> list[Child]:
        """Children that started and have exited."""
        return [c for c in self.children() if c.proc is not None and c.proc.poll() is not None]

    def pids(self) -> list[int]:
        out = [c.pid for c in self.children() if c.pid is not None]
        for p in self.parts:
            proc = getattr(p, "proc", None)
            if not isinstance(p, Child) and proc is not None:
                out.append(proc.pid)
        return out

    def watch(self, *, every: float = 0.5, on_tick: Callable[[], None] | None = None) -> None:
        """Block until a child dies (raises :class:`ChildDied` naming it) or a KeyboardInterrupt."""
        while True:
            for c in self.dead():
                raise ChildDied(f"{c.name} exited with code {c.returncode}; see {c.log}\n{c.tail(8)}")
            if on_tick is not None:
                on_tick()
            time.sleep(every)

    def stop(self) -> None:
        """Stop every part, newest first; a second Ctrl-C/SIGTERM meanwhile does not cut it short."""
        with _signals_ignored():
            for part in reversed(self.parts):
                try:
                    part.stop()
                except Exception:  # keep stopping the rest
                    log.exception("stopping %s", getattr(part, "name", part))
            self.parts.clear()


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    old = {s: signal.signal(s, signal.SIG_IGN) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (and SIGHUP) stop the caller like Ctrl-C does: through its ``finally``."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
