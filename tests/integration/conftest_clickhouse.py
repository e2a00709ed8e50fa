"""Session fixture: a private clickhouse-server (Debian's package) on free loopback ports.

Import it from tests/conftest.py (``from tests.integration.conftest_clickhouse import clickhouse``).
It installs the server first when it is missing and the session may (root + apt-get).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from devstack.clickhouse import ClickHouseUnavailable, LocalClickHouse, ensure_clickhouse_installed

    try:
        ensure_clickhouse_installed()
    except ClickHouseUnavailable as exc:
        pytest.fail(f"ClickHouse tests need clickhouse-server: {exc}")
    server = LocalClickHouse(tmp_path_factory.mktemp("clickhouse")).start(timeout=90)
    try:
        yield server
    finally:
        server.stop()
