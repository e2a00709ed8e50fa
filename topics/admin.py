"""Create and describe the topic catalog against any cluster (idempotent)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from core.errors import PlaylogError
from core.settings import Settings
from topics.topic_catalog import TopicSpec, load_catalog

log = logging.getLogger(__name__)


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.bootstrap_servers, "logger": log})


def _existing(admin: AdminClient, timeout: float = 10.0) -> dict:
    try:
        return admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise PlaylogError(f"cannot reach Kafka: {exc.args[0].str() if exc.args else exc}") from None


def create_topics(settings: Settings, replication: int = 1, timeout: float = 30.0) -> list[str]:
    """Create every catalog topic that does not exist yet; returns the names created."""
    admin = admin_client(settings)
    existing = _existing(admin)
    todo = [
        NewTopic(t.full_name(settings.topic_prefix), num_partitions=t.partitions,
                 replication_factor=replication, config=t.config())
        for t in load_catalog() if t.full_name(settings.topic_prefix) not in existing
    ]
    created = []
    if todo:
        for name, fut in admin.create_topics(todo, request_timeout=timeout).items():
            try:
                fut.result()
                created.append(name)
            except KafkaException as exc:
                err = exc.args[0]
                if err.code() != err.TOPIC_ALREADY_EXISTS:  # a concurrent creator won the race: fine
                    raise PlaylogError(f"cannot create topic {name}: {err.str()}") from None
        _wait_for_leaders(admin, created, timeout)
        _wait_until_served(settings, created, timeout)
    return created


def _wait_until_served(settings: Settings, names: list[str], timeout: float) -> None:
    """Until the leader of every partition of the new topics serves it (a ListOffsets answers).

    Metadata names a leader before that broker has created the partition locally (here up to ~1 s
    later). An idempotent producer writing then gets NOT_LEADER_OR_FOLLOWER for its first request
    while a later request of the same producer to the same partition is accepted (the broker takes
    any first sequence from a producer it does not know), and the first request's records are lost
    for good: KAFKA-15591 (also KAFKA-14312, KAFKA-19880; fixed after Kafka 3.9). Seen here: the
    first two records of a fixture's catalog partition missing, the statement wrong.
    """
    import time

    from confluent_kafka import Consumer, TopicPartition

    from topics.kafka_io import consumer_config

    if not names:
        return
    c = Consumer(consumer_config(settings, None))
    try:
        md = c.list_topics(timeout=timeout).topics
        pending = [TopicPartition(n, p) for n in names if n in md for p in md[n].partitions]
        deadline = time.monotonic() + timeout
        while pending:
            left = []
            for tp in pending:
                try:
                    c.get_watermark_offsets(tp, timeout=min(5.0, timeout), cached=False)
                except KafkaException:
                    left.append(tp)
            pending = left
            if pending:
                if time.monotonic() > deadline:
                    raise PlaylogError(f"{len(pending)} partition(s) of the new topics not served after {timeout:.0f}s, "
                                       f"e.g. {pending[0].topic}[{pending[0].partition}]")
                time.sleep(0.1)
    finally:
        c.close()


def _wait_for_leaders(admin: AdminClient, names: list[str], timeout: float) -> None:
    """Until every partition of the new topics has a leader (so produce/consume work at once)."""
    import time

    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending and time.monotonic() < deadline:
        topics = admin.list_topics(timeout=timeout).topics
        for name in list(pending):
            md = topics.get(name)
            if md is not None and md.error is None and md.partitions and all(
                p.leader >= 0 and p.error is None for p in md.partitions.values()
            ):
                pending.discard(name)
        if pending:
            time.sleep(0.1)
    if pending:
        raise PlaylogError(f"topics created but without leaders after {timeout:.0f}s: {', '.join(sorted(pending))}")


@dataclass
class TopicState:
    spec: TopicSpec
    name: str
    exists: bool
    partitions: int | None
    config: dict[str, str]

    @property
    def drift(self) -> list[str]:
        if not self.exists:
            return ["missing"]
        out = []
        if self.partitions != self.spec.partitions:
            out.append(f"partitions {self.partitions} != {self.spec.partitions}")
        for k, v in self.spec.config().items():
            if self.config.get(k) not in (None, v):
                out.append(f"{k}={self.config.get(k)} (catalog: {v})")
        return out


def describe_topics(settings: Settings, timeout: float = 10.0) -> list[TopicState]:
    admin = admin_client(settings)
    existing = _existing(admin, timeout)
    names = [t.full_name(settings.topic_prefix) for t in load_catalog() if t.full_name(settings.topic_prefix) in existing]
    configs: dict[str, dict[str, str]] = {}
    if names:
        res = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, n) for n in names])
        for r, fut in res.items():
            configs[r.name] = {k: v.value for k, v in fut.result(timeout).items()}
    out = []
    for t in load_catalog():
        name = t.full_name(settings.topic_prefix)
        md = existing.get(name)
        out.append(TopicState(t, name, md is not None, len(md.partitions) if md else None, configs.get(name, {})))
    return out
