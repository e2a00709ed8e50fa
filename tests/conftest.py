"""Session fixtures: a real local Kafka broker (KRaft) on free loopback ports.

Tests marked ``kafka`` use the ``kafka`` fixture; it starts one broker per test session under a
temporary data dir and points ``PLAYLOG_*`` at it for the test (``kafka_env``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings, load


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafkaHandle]:
    from devstack.kafka import LocalKafka, free_port

    data = tmp_path_factory.mktemp("kafka")
    broker = LocalKafka(data, port=free_port(), controller_port=free_port(), heap="512m")
    broker.start(timeout=120)
    try:
        yield LocalKafkaHandle(broker, data)
    finally:
        broker.stop()


class LocalKafkaHandle:
    def __init__(self, broker, data: Path):
        self.broker = broker
        self.data = data

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    def env(self, data_dir: Path, prefix: str) -> dict[str, str]:
        return {
            "PLAYLOG_BOOTSTRAP_SERVERS": self.bootstrap,
            "PLAYLOG_DATA_DIR": str(data_dir),
            "PLAYLOG_TOPIC_PREFIX": prefix,
        }


_counter = iter(range(1_000_000))


@pytest.fixture
def kafka_env(kafka: LocalKafkaHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """PLAYLOG_* pointing at the session broker, with a topic prefix of this test's own."""
    prefix = f"t{os.getpid()}x{next(_counter)}."
    for k, v in kafka.env(tmp_path / "data", prefix).items():
        monkeypatch.setenv(k, v)
    return load()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "kafka" in getattr(item, "fixturenames", ()) or "kafka_env" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)
