"""Helpers for tests against a local 3-node KRaft cluster (:class:`devstack.kafka.LocalKafkaCluster`).

- :func:`free_ports`, :func:`free_port_run`: free loopback ports, apart or in a strided run;
- :func:`start_cluster`: 3 nodes on free loopback ports under a temporary dir;
- :func:`cluster_settings`: ``PLAYLOG_*`` settings pointing at every node, with a topic prefix;
- :func:`prefix_topics`: every topic of a prefix on the cluster, whoever created it;
- :class:`PacedProducer`: produce events from a thread at a steady pace, so a broker can be killed
  while records are in flight;
- :func:`source_records`: every record of the source topics, as a multiset of (topic, value bytes);
- :func:`topic_replication`: a topic's replication factor and ``min.insync.replicas`` as the cluster says;
- :func:`group_coordinator`: the node coordinating a consumer group.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from pathlib import Path

from confluent_kafka.admin import AdminClient, ConfigResource

from core.settings import Settings, load
from devstack.kafka import LocalKafkaCluster
from topics.kafka_io import iter_records
from topics.producer import EventProducer
from topics.topic_catalog import source_topics

log = logging.getLogger(__name__)


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports below the ephemeral range (nodes are killed and started
    again on them: see devstack.supervisor.free_server_port)."""
    from devstack.supervisor import free_server_port

    ports: list[int] = []
    while len(ports) < n:
        port = free_server_port()
        if port not in ports:
            ports.append(port)
    return ports


def free_port_run(count: int, stride: int, lo: int = 20000, hi: int | None = None, tries: int = 500) -> int:
    """A base port such that ``base + stride*i`` (i < ``count``) are all free now (the layout
    ``playlog broker --nodes N`` derives from one port); below the ephemeral range by default, since
    the nodes are killed and started again on these ports (see devstack.supervisor.free_server_port)."""
    import random

    from devstack.supervisor import ephemeral_range

    hi = hi or ephemeral_range()[0]
    rng = random.Random()
    for _ in range(tries):
        base = rng.randrange(lo, hi - stride * count)
        socks = []
        try:
            for i in range(count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", base + stride * i))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise AssertionError(f"no run of {count} free ports {stride} apart")


def start_cluster(root: Path, nodes: int = 3, heap: str = "384m") -> LocalKafkaCluster:
    ports = free_ports(2 * nodes)
    cluster = LocalKafkaCluster(root, ports[:nodes], ports[nodes:], heap=heap)
    cluster.start(timeout=180)
    return cluster


def cluster_settings(cluster: LocalKafkaCluster, data_dir: Path, prefix: str, **extra: str) -> Settings:
    env = {"PLAYLOG_BOOTSTRAP_SERVERS": cluster.bootstrap, "PLAYLOG_DATA_DIR": str(data_dir),
           "PLAYLOG_TOPIC_PREFIX": prefix, **extra}
    return load(env)


def admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.bootstrap_servers, "logger": log})


def prefix_topics(settings: Settings) -> list[str]:
    """Every topic on the cluster whose name starts with the settings' prefix (the catalog's, and any
    a worker created itself)."""
    return sorted(t for t in admin(settings).list_topics(timeout=10).topics if t.startswith(settings.topic_prefix))


def topic_replication(settings: Settings, topic: str, timeout: float = 30.0) -> tuple[int, int]:
    """(replicas of every partition, ``min.insync.replicas``) of ``topic``; AssertionError if its
    partitions disagree on the replication factor. Waits while the broker asked does not know the
    topic yet (a broker may lag behind the controller's metadata for a moment)."""
    a = admin(settings)
    deadline = time.monotonic() + timeout
    while True:
        md = a.list_topics(topic, timeout=10).topics.get(topic)
        if md is not None and md.error is None and md.partitions:
            break
        assert time.monotonic() < deadline, f"{topic}: no partitions in the metadata after {timeout:.0f}s"
        time.sleep(0.2)
    factors = {len(p.replicas) for p in md.partitions.values()}
    assert len(factors) == 1, f"{topic}: partitions with different replication {factors}"
    res = a.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
    configs = next(iter(res.values())).result(10)
    return factors.pop(), int(configs["min.insync.replicas"].value)


def group_coordinator(settings: Settings, group: str, timeout: float = 30.0) -> int:
    """The node id of ``group``'s coordinator (waits while it is being elected or loaded)."""
    a = admin(settings)
    deadline = time.monotonic() + timeout
    while True:
        try:
            desc = a.describe_consumer_groups([group], request_timeout=10)[group].result(15)
            if desc.coordinator is not None and desc.coordinator.id >= 0:
                return desc.coordinator.id
        except Exception as exc:  # noqa: BLE001 - a coordinator moving or loading: ask again
            log.debug("describe %s: %s", group, exc)
        assert time.monotonic() < deadline, f"no coordinator for {group} after {timeout:.0f}s"
        time.sleep(0.3)


def source_records(settings: Settings) -> Counter[tuple[str, bytes]]:
    """Every record now in the source topics, counted by (topic without prefix, value bytes)."""
    p = settings.topic_prefix
    names = [p + t.name for t in source_topics()]
    return Counter((r.topic[len(p):], r.value or b"") for r in iter_records(settings, names))


class PacedProducer:
    """Produce ``events`` through an :class:`EventProducer` from a thread, spread over ``seconds``,
    then flush (which raises if any record failed to deliver); :meth:`join` re-raises that."""

    def __init__(self, producer: EventProducer, events: list[dict], seconds: float, steps: int = 40) -> None:
        self.producer = producer
        self.events = events
        self.seconds = seconds
        self.steps = max(1, min(steps, len(events)))
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="paced-producer", daemon=True)

    def start(self) -> PacedProducer:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            n = len(self.events)
            for i in range(self.steps):
                for ev in self.events[i * n // self.steps:(i + 1) * n // self.steps]:
                    self.producer.produce(ev)
                time.sleep(self.seconds / self.steps)
            self.producer.flush(120)
        except BaseException as exc:  # noqa: BLE001 - handed to join()
            self.error = exc

    def join(self, timeout: float = 180.0) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the producer did not finish within {timeout:.0f}s"
        if self.error is not None:
            raise self.error
