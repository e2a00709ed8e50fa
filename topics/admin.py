"""Create and describe the topic catalog against any cluster (idempotent)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from core.errors import PlaylogError
from core.settings import Settings
from topics.client_log import client_logger
from topics.topic_catalog import TopicSpec, load_catalog

log = logging.getLogger(__name__)


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.bootstrap_servers, "logger": client_logger(__name__)})


def _existing(admin: AdminClient, timeout: float = 10.0) -> dict:
    try:
        return admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise PlaylogError(f"cannot reach Kafka: {exc.args[0].str() if exc.args else exc}") from None


MAX_REPLICATION = 3


def min_insync_for(replication: int) -> int:
    """``min.insync.replicas`` for a replication factor: 2 of 3 (one broker may be lost while
    ``acks=all`` writers go on, and an acknowledged record is on two brokers), 1 below 3."""
    return 2 if replication >= 3 else 1


def replication_for(settings: Settings, admin: AdminClient | None = None, timeout: float = 10.0) -> int:
    """The replication factor new topics get on the configured cluster: its brokers'
    ``default.replication.factor`` (3 on the local 3-node cluster and in docker-compose), else the
    number of live brokers, at most 3."""
    admin = admin or admin_client(settings)
    try:
        md = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise PlaylogError(f"cannot reach Kafka: {exc.args[0].str() if exc.args else exc}") from None
    brokers = sorted(md.brokers)
    if not brokers:
        raise PlaylogError(f"no live broker at {settings.bootstrap_servers}")
    fallback = min(MAX_REPLICATION, len(brokers))
    try:
        res = admin.describe_configs([ConfigResource(ConfigResource.Type.BROKER, str(brokers[0]))])
        for fut in res.values():
            entry = fut.result(timeout).get("default.replication.factor")
            if entry is not None and entry.value is not None and int(entry.value) > 0:
                return int(entry.value)
    except (KafkaException, ValueError) as exc:
        log.warning("cannot read the brokers' default.replication.factor (%s); using %d", exc, fallback)
    return fallback


def create_topics(settings: Settings, replication: int | None = None, timeout: float = 30.0) -> list[str]:
    """Create every catalog topic that does not exist yet; returns the names created.

    ``replication`` None: the cluster's (:func:`replication_for`: 1 on a single broker, 3 on a
    cluster of 3). With 3 replicas each topic gets ``min.insync.replicas=2``
    (:func:`min_insync_for`), whatever the brokers' default.
    """
    created: list[str] = []
    todo: list[NewTopic] = []
    for attempt in range(CREATE_ATTEMPTS):
        admin = admin_client(settings)
        existing = _existing(admin)
        missing = [t for t in load_catalog() if t.full_name(settings.topic_prefix) not in existing]
        if not missing:
            break
        if replication is None:
            replication = replication_for(settings, admin)
        extra = {"min.insync.replicas": str(min_insync_for(replication))} if replication > 1 else {}
        batch = [NewTopic(t.full_name(settings.topic_prefix), num_partitions=t.partitions,
                          replication_factor=replication, config={**t.config(), **extra}) for t in missing]
        log.debug("creating %d topic(s) with replication %d", len(batch), replication)
        again = []
        for name, fut in admin.create_topics(batch, request_timeout=timeout).items():
            try:
                fut.result()
                created.append(name)
            except KafkaException as exc:
                err = exc.args[0]
                if err.code() == err.TOPIC_ALREADY_EXISTS:  # a concurrent creator won the race: fine
                    continue
                if _transient(err) and attempt + 1 < CREATE_ATTEMPTS:
                    again.append(name)
                    continue
                raise PlaylogError(f"cannot create topic {name}: {err.str()}") from None
        todo += [t for t in batch if t.topic in created]
        if not again:
            break
        log.info("creating %d topic(s) again after a transient error", len(again))
        time.sleep(1.0)
    if created:
        _wait_for_leaders(admin, created, timeout)
        _wait_until_served(settings, {t.topic: t.num_partitions for t in todo}, timeout)
    return created


CREATE_ATTEMPTS = 5


def _transient(err: KafkaError) -> bool:
    """Worth asking again: the cluster is still settling. Seen on a 3-node cluster just started:
    "Local: Broker handle destroyed without termination" (librdkafka retires its bootstrap
    connections once it learns the brokers' ids, failing a request in flight on one of them)."""
    return err.retriable() or err.code() in (KafkaError._DESTROY_BROKER, KafkaError._TRANSPORT,
                                             KafkaError._TIMED_OUT, KafkaError.NOT_CONTROLLER)


def _wait_until_served(settings: Settings, partitions: dict[str, int], timeout: float) -> None:
    """Until the leader of every partition of the new topics serves it (a ListOffsets answers).

    Metadata names a leader before that broker has created the partition locally (here up to ~1 s
    later). An idempotent producer writing then gets NOT_LEADER_OR_FOLLOWER for its first request
    while a later request of the same producer to the same partition is accepted (the broker takes
    any first sequence from a producer it does not know), and the first request's records are lost
    for good: KAFKA-15591 (also KAFKA-14312, KAFKA-19880; fixed after Kafka 3.9). Seen here: the
    first two records of a fixture's catalog partition missing, the statement wrong.

    On a cluster, a broker may still lag behind the controller's metadata for a moment: a client
    whose first look at a topic came from it keeps "unknown partition" in its cache for minutes
    (seen on the local 3-node cluster under load). So each pass asks with a fresh client, and the
    partitions come from the topics' specs (``partitions``), not from one broker's answer.
    """
    import time

    from confluent_kafka import Consumer, TopicPartition

    from topics.kafka_io import consumer_config

    pending = [TopicPartition(n, p) for n, count in partitions.items() for p in range(count)]
    deadline = time.monotonic() + timeout
    why: dict[tuple[str, int], str] = {}
    while pending:
        left = []
        c = Consumer(consumer_config(settings, None))
        try:
            for tp in pending:
                try:
                    c.get_watermark_offsets(tp, timeout=min(5.0, timeout), cached=False)
                except KafkaException as exc:
                    why[(tp.topic, tp.partition)] = exc.args[0].str() if exc.args else str(exc)
                    left.append(tp)
        finally:
            c.close()
        pending = left
        if pending:
            if time.monotonic() > deadline:
                first = pending[0]
                raise PlaylogError(f"{len(pending)} partition(s) of the new topics not served after {timeout:.0f}s, "
                                   f"e.g. {first.topic}[{first.partition}]: {why.get((first.topic, first.partition))}")
            time.sleep(0.2)


def _wait_for_leaders(admin: AdminClient, names: list[str], timeout: float) -> None:
    """Until every live broker's metadata has every partition of the new topics with a leader (so
    produce/consume work at once, whichever broker a client asks first: on a cluster a broker can
    lag behind the controller for a moment, and a client that asked it keeps the answer)."""
    import time

    deadline = time.monotonic() + timeout
    brokers = sorted(f"{b.host}:{b.port}" for b in admin.list_topics(timeout=timeout).brokers.values())
    pending = {(b, n) for b in brokers for n in names}
    while pending and time.monotonic() < deadline:
        for broker in sorted({b for b, _ in pending}):
            # a client that knows only this broker asks it (and nobody else) for its metadata
            one = AdminClient({"bootstrap.servers": broker, "logger": client_logger(__name__)})
            try:
                topics = one.list_topics(timeout=min(5.0, timeout)).topics
            except KafkaException:
                continue
            for name in [n for b, n in pending if b == broker]:
                md = topics.get(name)
                if md is not None and md.error is None and md.partitions and all(
                    p.leader >= 0 and p.error is None for p in md.partitions.values()
                ):
                    pending.discard((broker, name))
        if pending:
            time.sleep(0.1)
    if pending:
        broker, name = sorted(pending)[0]
        raise PlaylogError(f"topics created but without leaders after {timeout:.0f}s: {len(pending)} (broker, topic) "
                           f"pair(s), e.g. {name} on {broker}")


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


def apply_retention(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Set each existing catalog topic's retention configs (cleanup.policy, retention.ms,
    delete.retention.ms: :meth:`TopicSpec.retention_config`) where the cluster differs from the catalog,
    with an incremental alter (other configs are left as they are). Returns ``"<topic> <key>=<value>"``
    for each config changed."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry

    admin = admin_client(settings)
    states = {s.name: s for s in describe_topics(settings, timeout)}
    changes: list[str] = []
    resources = []
    for name, st in states.items():
        if not st.exists:
            continue
        want = st.spec.retention_config()
        entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                   for k, v in want.items() if st.config.get(k) != v]
        if entries:
            resources.append(ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=entries))
            changes += [f"{name} {e.name}={e.value}" for e in entries]
    if resources:
        for res, fut in admin.incremental_alter_configs(resources, request_timeout=timeout).items():
            try:
                fut.result(timeout)
            except KafkaException as exc:
                raise PlaylogError(f"cannot set the retention of topic {res.name}: {exc.args[0].str()}") from None
        log.info("retention set: %s", "; ".join(changes))
    return changes
