"""The feed of the playback API's read replicas: follows the topics on Kafka into a ReplicaState.

:class:`ReplicaFeed` runs a background thread with a confluent-kafka consumer **without a consumer
group** (every partition of the view topics and the ``player`` event topic assigned
from the beginning, then followed), decodes each record (JSON view documents, Avro events) and hands
it to :meth:`playback.replica_state.ReplicaState.apply`, the pure step.

"Ready" means caught up (DESIGN.md, "Recovery is the normal path"): when the feed has its partitions
assigned it records their end offsets, and the replica is ready once it has applied everything up to
them, never before. Until then the API answers its ``/v1`` routes with 503 (playback/app.py), so
nothing is ever answered from a half-built view: after a restart on a long history a track taken down
yesterday is not "playable" and known users are not "unregistered" while the views rebuild.
:meth:`ReplicaFeed.wait_caught_up` waits until the high watermarks seen at *call* time are reached.

:class:`Replica` is what the API holds: a :class:`~playback.replica_state.ReplicaState` that owns its
feed (``start`` / ``stop`` / ``wait_ready``) and knows whether it is ``ready``. Tests and benchmarks
that never call ``start`` use it as plain in-memory state, without a broker (ready: nothing to catch
up with).
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
from topics.client_log import client_logger

log = logging.getLogger(__name__)

__all__ = ["EVENT_KINDS", "KINDS", "PLAYER_PENDING_MAX", "VIEW_KINDS", "Replica", "ReplicaFeed",
           "ReplicaState", "topic_names"]


def topic_names(prefix: str) -> dict[str, str]:
    """Full topic name -> replica kind."""
    out = {f"{prefix}view.{k}": k for k in VIEW_KINDS}
    out.update({f"{prefix}{k}": k for k in EVENT_KINDS})
    return out


class ReplicaFeed:
    """Consume the replica topics of ``settings.topic_prefix`` in a thread and apply them to ``state``.

    ``kinds`` picks the topics to follow (default: every kind of :func:`topic_names`; the CDN follows
    only ``catalog`` and ``rights``). ``state`` needs ``apply(kind, key, doc)``, ``skipped``, ``search``
    and ``commit_search()`` (a :class:`~playback.replica_state.ReplicaState` has them).

    Caught up. Once its partitions are assigned the feed records the end offset of every one of them
    (:attr:`start_targets`, "what it saw when it started"); it is :attr:`caught_up` from the moment
    its position reached each of them (offsets of the records applied, or the end-of-partition event,
    which also steps over transaction markers), after a search-index commit, and stays so.
    """

    def __init__(self, state: Any, kinds: tuple[str, ...] = KINDS, *, name: str = "replica") -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown replica kinds: {sorted(unknown)}")
        self.state = state
        self.kinds = kinds
        self.name = name  # in log lines and the thread name
        self.positions: dict[tuple[str, int], int] = {}
        self.start_targets: dict[tuple[str, int], int] | None = None  # end offsets seen at start
        self.last_error: str | None = None
        self.caught_up_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._started = threading.Event()
        self._topics: dict[str, str] = {}
        self._consumer: Any = None
        self._servers = ""
        self._partitions: list[tuple[str, int]] = []

    @property
    def started(self) -> bool:
        """``start`` was called (a feed never started has nothing to catch up with)."""
        return self._thread is not None or self._stop.is_set()

    @property
    def caught_up(self) -> bool:
        """Every partition reached the end offset it had when the feed started (sticky)."""
        return self.caught_up_event.is_set()

    def start(self, settings: Any) -> None:
        """Follow the topics of ``settings.topic_prefix`` in a background thread."""
        if self._thread is not None:
            return
        self._topics = {t: k for t, k in topic_names(settings.topic_prefix).items() if k in self.kinds}
        self._servers = settings.bootstrap_servers
        self._thread = threading.Thread(target=self._run, args=(settings,), name=self.name, daemon=True)
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
            "enable.partition.eof": True,  # the end-of-partition event tells when a partition is caught up
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 20,
            "logger": client_logger(__name__),
        }

    def _assign(self, consumer: Any) -> None:
        """Assign every partition of the followed topics from the beginning (waiting for the topics and
        the broker as long as it takes), then record their end offsets: the targets of "caught up"."""
        from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

        while not self._stop.is_set():
            try:
                md = consumer.list_topics(timeout=5)
                missing = [t for t in self._topics if t not in md.topics or md.topics[t].error is not None]
                if not missing:
                    parts = [TopicPartition(t, p) for t in self._topics for p in md.topics[t].partitions]
                    targets = {}
                    for tp in parts:
                        _lo, hi = consumer.get_watermark_offsets(tp, timeout=5)
                        targets[(tp.topic, tp.partition)] = hi
                    consumer.assign([TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in parts])
                    self._partitions = [(tp.topic, tp.partition) for tp in parts]
                    self.start_targets = targets
                    return
                error = f"waiting for topics: {', '.join(sorted(missing))}"
            except KafkaException as exc:
                error = f"waiting for the broker at {self._servers}: {exc.args[0].str() if exc.args else exc}"
            if error != self.last_error:
                log.info("%s %s", self.name, error)
            self.last_error = error
            self._stop.wait(1.0)

    def behind(self) -> dict[tuple[str, int], int]:
        """Records still to read per partition to reach :attr:`start_targets` (empty once caught up)."""
        targets = self.start_targets
        if targets is None:
            return {}
        positions = self.positions
        return {tp: hi - positions.get(tp, 0) for tp, hi in targets.items() if positions.get(tp, 0) < hi}

    def progress(self) -> dict[str, Any]:
        """For ``/healthz``: caught up or not, and how far from the start targets."""
        if self.start_targets is None:
            return {"caught_up": self.caught_up, "assigned": False}
        behind = self.behind()
        return {"caught_up": self.caught_up, "assigned": True, "partitions_behind": len(behind),
                "records_behind": sum(behind.values())}

    def _check_caught_up(self) -> None:
        if self.caught_up or self.start_targets is None or self.behind():
            return
        self.state.commit_search()
        self.caught_up_event.set()
        log.info("%s caught up with the end offsets seen at start (%d records applied)", self.name,
                 getattr(self.state, "applied", 0))

    def _run(self, settings: Any) -> None:
        from confluent_kafka import Consumer, KafkaError

        from schemas.codec import EventError, default_codec

        state = self.state
        codec = default_codec()
        consumer = Consumer(self._consumer_config(settings))
        self._consumer = consumer
        positions = self.positions
        try:
            self._assign(consumer)
            if self._stop.is_set():
                return
            self.last_error = None
            self._started.set()
            self._check_caught_up()  # nothing to read (empty topics)
            last_commit = 0.0
            while not self._stop.is_set():
                msgs = consumer.consume(1000, 0.1)
                if msgs:
                    for m in msgs:
                        err = m.error()
                        if err is not None:
                            if err.code() == KafkaError._PARTITION_EOF:
                                tp = (m.topic(), m.partition())
                                if m.offset() > positions.get(tp, 0):
                                    positions[tp] = m.offset()
                            else:
                                log.warning("%s consume error: %s", self.name, err)
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
                            log.warning("%s could not decode %s@%d: %s", self.name, m.topic(), m.offset(), exc)
                        else:
                            state.apply(kind, key, doc)  # type: ignore[arg-type]
                        positions[(m.topic(), m.partition())] = m.offset() + 1
                    self._check_caught_up()
                now = time.monotonic()
                if state.search is not None and (not msgs or now - last_commit > 0.25):
                    if state.commit_search():
                        last_commit = now
        except Exception as exc:  # the API keeps serving the last state; the error is visible on /healthz
            self.last_error = f"{self.name} consumer stopped: {exc}"
            log.exception("%s consumer stopped", self.name)
        finally:
            consumer.close()

    def wait_ready(self, timeout: float) -> bool:
        """Wait until :attr:`caught_up` (the end offsets seen at start reached); False on timeout."""
        return self.caught_up_event.wait(timeout)

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
    """A :class:`ReplicaState` with its Kafka feed: ``start`` follows the topics; ``ready`` means caught up
    with the end offsets the feed saw when it started (and stays true). A replica whose feed was never
    started is plain in-memory state (tests, benchmarks) and is ready; setting ``ready = True`` forces it
    (a benchmark that filled the state by hand before following the topics)."""

    def __init__(self, *, search: bool = True, kinds: tuple[str, ...] = KINDS) -> None:
        super().__init__(search=search)
        self.feed = ReplicaFeed(self, kinds)
        self._forced_ready = False

    @property
    def ready(self) -> bool:
        return self._forced_ready or self.feed.caught_up or not self.feed.started

    @ready.setter
    def ready(self, value: bool) -> None:
        self._forced_ready = bool(value)

    @property
    def last_error(self) -> str | None:
        """The feed's last problem (waiting for topics or the broker, consumer stopped), on ``/healthz``."""
        return self.feed.last_error

    @property
    def positions(self) -> dict[tuple[str, int], int]:
        """Next offset to read per (topic, partition) consumed so far."""
        return self.feed.positions

    def progress(self) -> dict[str, Any]:
        """How far the feed is from the end offsets it saw at start (``/healthz``)."""
        return self.feed.progress()

    def start(self, settings: Any) -> None:
        """Follow the topics of ``settings.topic_prefix`` in a background thread."""
        self.feed.start(settings)

    def stop(self, timeout: float = 10.0) -> None:
        self.feed.stop(timeout)

    def wait_ready(self, timeout: float) -> bool:
        """Wait until :attr:`ready`; False on timeout."""
        return self.ready or self.feed.wait_ready(timeout)

    def wait_caught_up(self, timeout: float = 30.0) -> bool:
        """Wait until every assigned partition reached the high watermark it had when this was called
        (and the search index committed). False on timeout."""
        return self.feed.wait_caught_up(timeout)
