"""The feed of the playback API's read replicas: follows the topics on Kafka into a ReplicaState.

:class:`ReplicaFeed` runs a background thread with a confluent-kafka consumer **without a consumer
group** (every partition of the view topics and the ``player`` / ``listening`` event topics assigned
from the beginning, then followed), decodes each record (JSON view documents, Avro events) and hands
it to :meth:`playback.replica_state.ReplicaState.apply`, the pure step. :meth:`ReplicaFeed.wait_caught_up`
waits until the high watermarks seen at call time are reached.

:class:`Replica` is what the API holds: a :class:`~playback.replica_state.ReplicaState` that owns its
feed (``start`` / ``stop`` / ``wait_caught_up``) and knows whether it is ``ready`` (caught up once).
Tests and benchmarks that never call ``start`` use it as plain in-memory state, without a broker.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson

from playback.replica_state import (
    EVENT_KINDS,
    KINDS,
    PLAYER_PENDING_MAX,
    VIEW_KINDS,
    ReplicaState,
)

log = logging.getLogger(__name__)

__all__ = ["EVENT_KINDS", "KINDS", "PLAYER_PENDING_MAX", "VIEW_KINDS", "Replica", "ReplicaFeed",
           "ReplicaState", "topic_names"]


def topic_names(prefix: str) -> dict[str, str]:
    """Full topic name -> replica kind."""
    out = {f"{prefix}view.{k}": k for k in VIEW_KINDS}
    out.update({f"{prefix}{k}": k for k in EVENT_KINDS})
    return out


class ReplicaFeed:
    """Consume the replica topics of ``settings.topic_prefix`` in a thread and apply them to ``state``."""

    def __init__(self, state: ReplicaState) -> None:
        self.state = state
        self.positions: dict[tuple[str, int], int] = {}
        self.last_error: str | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._started = threading.Event()
        self._topics: dict[str, str] = {}
        self._consumer: Any = None
        self._servers = ""
        self._partitions: list[tuple[str, int]] = []

    def start(self, settings: Any) -> None:
        """Follow the topics of ``settings.topic_prefix`` in a background thread."""
        if self._thread is not None:
            return
        self._topics = topic_names(settings.topic_prefix)
        self._servers = settings.bootstrap_servers
        self._thread = threading.Thread(target=self._run, args=(settings,), name="replica", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _consumer_config(self, settings: Any) -> dict:
        return {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": "playlog-api-replica",  # required by librdkafka; never joined (assign, no commit)
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 20,
            "logger": log,
        }

    def _assign(self, consumer: Any) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        while not self._stop.is_set():
            md = consumer.list_topics(timeout=5)
            missing = [t for t in self._topics if t not in md.topics or md.topics[t].error is not None]
            if not missing:
                parts = [TopicPartition(t, p, OFFSET_BEGINNING) for t in self._topics for p in md.topics[t].partitions]
                consumer.assign(parts)
                self._partitions = [(tp.topic, tp.partition) for tp in parts]
                return
            self.last_error = f"waiting for topics: {', '.join(sorted(missing))}"
            log.info("replica %s", self.last_error)
            self._stop.wait(1.0)

    def _run(self, settings: Any) -> None:
        from confluent_kafka import Consumer

        from schemas.codec import EventError, default_codec

        state = self.state
        codec = default_codec()
        consumer = Consumer(self._consumer_config(settings))
        self._consumer = consumer
        try:
            self._assign(consumer)
            self.last_error = None
            self._started.set()
            last_commit = 0.0
            while not self._stop.is_set():
                msgs = consumer.consume(1000, 0.1)
                if msgs:
                    for m in msgs:
                        if m.error() is not None:
                            log.warning("replica consume error: %s", m.error())
                            continue
                        kind = self._topics.get(m.topic())
                        key = m.key().decode() if m.key() is not None else ""
                        value = m.value()
                        try:
                            if kind in EVENT_KINDS:
                                doc = codec.decode(value)
                            else:
                                doc = orjson.loads(value) if value is not None else None
                        except (EventError, orjson.JSONDecodeError) as exc:
                            state.skipped += 1
                            log.warning("replica could not decode %s@%d: %s", m.topic(), m.offset(), exc)
                        else:
                            state.apply(kind, key, doc)  # type: ignore[arg-type]
                        self.positions[(m.topic(), m.partition())] = m.offset() + 1
                now = time.monotonic()
                if state.search is not None and (not msgs or now - last_commit > 0.25):
                    if state.commit_search():
                        last_commit = now
        except Exception as exc:  # the API keeps serving the last state; the error is visible on /healthz
            self.last_error = f"replica consumer stopped: {exc}"
            log.exception("replica consumer stopped")
        finally:
            consumer.close()

    def wait_caught_up(self, timeout: float = 30.0) -> bool:
        """Wait until every assigned partition reached the high watermark it had when this was called
        (and the search index committed). False on timeout."""
        deadline = time.monotonic() + timeout
        if not self._started.wait(timeout):
            return False
        from confluent_kafka import Consumer, TopicPartition

        probe = Consumer({"bootstrap.servers": self._servers, "group.id": "probe"})
        try:
            targets = {}
            for t, p in self._partitions:
                lo, hi = probe.get_watermark_offsets(TopicPartition(t, p), timeout=max(0.1, deadline - time.monotonic()))
                if hi > lo:
                    targets[(t, p)] = hi
        finally:
            probe.close()
        while time.monotonic() < deadline:
            if all(self.positions.get(tp, 0) >= hi for tp, hi in targets.items()):
                self.state.commit_search()
                return True
            time.sleep(0.02)
        return False


class Replica(ReplicaState):
    """A :class:`ReplicaState` with its Kafka feed: ``start`` follows the topics, ``ready`` turns true
    at the first successful :meth:`wait_caught_up` (benchmarks that fill the state by hand set it)."""

    def __init__(self, *, search: bool = True) -> None:
        super().__init__(search=search)
        self.feed = ReplicaFeed(self)
        self.ready = False  # set by the first successful wait_caught_up

    @property
    def last_error(self) -> str | None:
        """The feed's last problem (waiting for topics, consumer stopped), shown on ``/healthz``."""
        return self.feed.last_error

    @property
    def positions(self) -> dict[tuple[str, int], int]:
        """Next offset to read per (topic, partition) consumed so far."""
        return self.feed.positions

    def start(self, settings: Any) -> None:
        """Follow the topics of ``settings.topic_prefix`` in a background thread."""
        self.feed.start(settings)

    def stop(self, timeout: float = 10.0) -> None:
        self.feed.stop(timeout)

    def wait_caught_up(self, timeout: float = 30.0) -> bool:
        """Wait until every assigned partition reached the high watermark it had when this was called
        (and the search index committed); the replica is ``ready`` from then on. False on timeout."""
        ok = self.feed.wait_caught_up(timeout)
        if ok:
            self.ready = True
        return ok
