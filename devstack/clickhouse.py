"""A private local ClickHouse server for tests and ``playlog sink clickhouse --local``.

It runs Debian's ``clickhouse-server`` (18.16 on this machine; any later one works too) as a
child process with its own config, data and logs under one directory, on free loopback ports:
no system service, no root-owned paths. :func:`ensure_clickhouse_installed` installs the Debian
packages when they are missing (idempotent; the Makefile's ``ENSURE_CLICKHOUSE`` snippet below
does the same from the shell).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.supervisor import stop_process

log = logging.getLogger(__name__)

SERVER_BINARIES = ("clickhouse-server", "clickhouse")

# Shell for the Makefile (root, Debian): installs the server only when it is missing.
ENSURE_CLICKHOUSE = (
    "command -v clickhouse-server >/dev/null 2>&1 || "
    "(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-server clickhouse-client)"
)

_CONFIG = """<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>{root}/log/server.log</log>
        <errorlog>{root}/log/server.err.log</errorlog>
        <size>50M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{tcp_port}</tcp_port>
    <http_port>{http_port}</http_port>
    <max_connections>256</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>64</max_concurrent_queries>
    <uncompressed_cache_size>104857600</uncompressed_cache_size>
    <mark_cache_size>104857600</mark_cache_size>
    <path>{root}/data/</path>
    <tmp_path>{root}/tmp/</tmp_path>
    <user_files_path>{root}/user_files/</user_files_path>
    <format_schema_path>{root}/format_schemas/</format_schema_path>
    <users_config>{root}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
</yandex>
"""

_USERS = """<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries><errors>0</errors><result_rows>0</result_rows>
                <read_rows>0</read_rows><execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
"""



class _NotReady(Exception):
    pass


class ClickHouseUnavailable(RuntimeError):
    """The server binary is missing or the server did not come up."""


def server_binary() -> str | None:
    for name in SERVER_BINARIES:
        path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
        if path:
            return path
    return None


def ensure_clickhouse_installed() -> str:
    """The server binary's path, installing Debian's packages first if it is missing (needs root)."""
    found = server_binary()
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ClickHouseUnavailable("clickhouse-server is not installed (apt-get install clickhouse-server, as root)")
    subprocess.run(["bash", "-c", ENSURE_CLICKHOUSE], check=True)
    found = server_binary()
    if not found:
        raise ClickHouseUnavailable("clickhouse-server is still missing after apt-get install")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalClickHouse:
    """One private server process; use as a context manager or call start()/stop()."""

    root: Path
    tcp_port: int = 0
    http_port: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"clickhouse://127.0.0.1:{self.tcp_port}/playlog"

    def start(self, timeout: float = 60.0) -> LocalClickHouse:
        binary = server_binary()
        if binary is None:
            raise ClickHouseUnavailable("clickhouse-server is not installed (see devstack.clickhouse)")
        self.root = Path(self.root).resolve()
        for sub in ("data", "tmp", "log", "user_files", "format_schemas"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.tcp_port = self.tcp_port or free_port()
        self.http_port = self.http_port or free_port()
        (self.root / "config.xml").write_text(
            _CONFIG.format(root=self.root, tcp_port=self.tcp_port, http_port=self.http_port)
        )
        (self.root / "users.xml").write_text(_USERS)
        args = [binary, f"--config-file={self.root / 'config.xml'}"]
        if Path(binary).name == "clickhouse":
            args.insert(1, "server")
        out = open(self.root / "log" / "stdout.log", "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(args, cwd=self.root, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        out.close()
        self._wait_ready(timeout)
        log.info("clickhouse-server pid %s on tcp %s, http %s", self.proc.pid, self.tcp_port, self.http_port)
        return self

    def _wait_ready(self, timeout: float) -> None:
        from clickhouse_driver import Client
        from clickhouse_driver.errors import Error as CHError

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        driver_log = logging.getLogger("clickhouse_driver.connection")
        level = driver_log.level
        driver_log.setLevel(logging.CRITICAL)  # "connection refused" while the server boots is expected
        try:
            self._poll_ready(deadline, Client, CHError)
            return
        except _NotReady as exc:
            last = exc.__cause__
        finally:
            driver_log.setLevel(level)
        self.stop()
        raise ClickHouseUnavailable(f"clickhouse-server not ready after {timeout}s: {last}; {self._log_tail()}")

    def _poll_ready(self, deadline: float, Client, CHError) -> None:  # noqa: N803 - classes passed in
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ClickHouseUnavailable(f"clickhouse-server exited with {self.proc.returncode}: {self._log_tail()}")
            try:
                client = Client(host="127.0.0.1", port=self.tcp_port, connect_timeout=1, send_receive_timeout=5)
                client.execute("SELECT 1")
                client.disconnect()
                return
            except (CHError, OSError, EOFError) as exc:
                last = exc
                time.sleep(0.2)
        raise _NotReady() from last

    def _log_tail(self) -> str:
        for name in ("server.err.log", "stdout.log"):
            p = self.root / "log" / name
            if p.exists() and p.stat().st_size:
                return p.read_text(errors="replace")[-600:].replace("\n", " | ")
        return "(no log)"

    def stop(self, timeout: float = 20.0) -> None:
        stop_process(self.proc, timeout)

    def __enter__(self) -> LocalClickHouse:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
