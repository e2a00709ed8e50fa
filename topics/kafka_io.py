"""Producers and consumers of wire-format events (confluent-kafka), and the dead-letter path.

- :class:`EventProducer`: idempotent (``enable.idempotence``, ``acks=all``); every delivery
  report is checked and ``flush()`` raises if any record failed: failures surface, never vanish.
- :class:`KafkaEventSink`: the :class:`topics.emit.EventSink` that routes events to their topic
  with their key (topics/topic_catalog.py).
- :func:`iter_records` / :func:`iter_batches`: read topics (replay from the beginning up to the
  end offsets seen at start, or follow as a consumer group), yielding raw :class:`Record` s.
- :func:`dead_letter`: the original bytes plus source topic/partition/offset and a reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from core.errors import PlaylogError
from core.pii import PII_FIELDS, seal_event
from core.settings import Settings
from schemas.codec import Codec, default_codec
from topics.client_log import client_logger
from topics.deadletter import DEADLETTER_TOPIC, deadletter_headers, deadletter_record
from topics.topic_catalog import key_of, topic_of

if TYPE_CHECKING:
    from topics.pii_keys import PiiKeyStore

log = logging.getLogger(__name__)


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...] = ()


def producer_config(settings: Settings, **extra: object) -> dict:
    cfg: dict = {
        "bootstrap.servers": settings.bootstrap_servers,
        "partitioner": "murmur2_random",  # the Java client's partitioner, as aiokafka (Faust) uses
        "enable.idempotence": True,  # implies acks=all, retries, max.in.flight<=5 with ordering kept
        "acks": "all",
        "linger.ms": 5,
        "batch.num.messages": 10000,
        "queue.buffering.max.messages": 1_000_000,
        "message.timeout.ms": 60_000,
        "logger": client_logger(__name__),
    }
    cfg.update(extra)
    return cfg


class EventProducer:
    """Produce events (or raw records) to Kafka; ``flush()`` raises if anything failed to deliver."""

    def __init__(self, settings: Settings, codec: Codec | None = None, **config: object):
        self.settings = settings
        self.codec = codec or default_codec()
        self.prefix = settings.topic_prefix
        self._producer = Producer(producer_config(settings, **config))
        self.delivered = 0
        self.failed: list[str] = []
        self._pii_keys: PiiKeyStore | None = None

    @property
    def config(self) -> dict:
        return producer_config(self.settings)

    def _on_delivery(self, err: KafkaError | None, msg: object) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failed.append(f"{msg.topic()}: {err.str()}")  # type: ignore[attr-defined]

    def produce_raw(
        self, topic: str, value: bytes | None, key: str | bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None, partition: int | None = None,
        on_delivery: Callable[[KafkaError | None, object], None] | None = None,
    ) -> None:
        """Produce one record to a full topic name; waits for queue space if the buffer is full.
        ``on_delivery`` is told of this record's delivery too (failures are recorded either way)."""
        report = self._on_delivery
        if on_delivery is not None:
            def report(err: KafkaError | None, msg: object) -> None:
                self._on_delivery(err, msg)
                on_delivery(err, msg)
        kwargs: dict = {"key": key, "value": value, "on_delivery": report}
        if headers:
            kwargs["headers"] = headers
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                self._producer.produce(topic, **kwargs)
                break
            except BufferError:
                self._producer.poll(0.05)
            except KafkaException as exc:
                raise PlaylogError(f"cannot produce to {topic}: {exc}") from None
        self._producer.poll(0)

    def produce(self, event: dict) -> None:
        """Encode and produce an event to its topic, keyed as events.md says. Personal fields
        (core/pii.py PII_FIELDS) are sealed with the user's key first, so they never leave in clear;
        a ``user.erasure_requested`` shreds the user's keys once produced (topics/pii_keys.py)."""
        etype = event["type"]
        if etype in PII_FIELDS:
            event = seal_event(event, self.pii_keys().key_for)
        self.produce_raw(self.prefix + topic_of(etype), self.codec.encode(event), key_of(event))
        if etype == "user.erasure_requested":
            self.pii_keys().shred(event["user_id"])

    def pii_keys(self) -> PiiKeyStore:
        """This producer's view of the PII key store (read on first use)."""
        if self._pii_keys is None:
            from topics.pii_keys import PiiKeyStore

            self._pii_keys = PiiKeyStore(self.settings, self._producer)
        return self._pii_keys

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports; PlaylogError if a record failed to deliver."""
        self._producer.poll(timeout)
        self.raise_failed()

    def raise_failed(self) -> None:
        if self.failed:
            first = self.failed[0]
            n = len(self.failed)
            self.failed = []
            raise PlaylogError(f"{n} record(s) failed to deliver, first: {first}")

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining:
            raise PlaylogError(f"{remaining} record(s) still undelivered after {timeout:.0f}s; is the broker up at {self.settings.bootstrap_servers}?")
        self.raise_failed()


class KafkaEventSink:
    """EventSink to Kafka: routes each event to its topic with its key."""

    def __init__(self, settings: Settings, codec: Codec | None = None):
        self.producer = EventProducer(settings, codec)
        self.count = 0

    def emit(self, event: dict) -> None:
        self.producer.produce(event)
        self.count += 1

    def close(self) -> None:
        self.producer.flush()


def dead_letter(
    producer: EventProducer, source: Record | None, reason: str, value: bytes | None = None,
    source_topic: str | None = None,
) -> None:
    """Send bad input to the dead-letter topic with its original bytes, source position and reason
    (the record of :func:`topics.deadletter.deadletter_record`)."""
    if source is not None:
        key, original, headers = deadletter_record(source, reason)
        value = original if value is None else value
        source_topic = source.topic
    else:
        key, headers = (source_topic or "unknown").encode(), deadletter_headers(reason)
    producer.produce_raw(producer.prefix + DEADLETTER_TOPIC, value, key=key, headers=headers)
    log.warning("dead-lettered record from %s: %s", source_topic, reason)


def consumer_config(settings: Settings, group_id: str | None, **extra: object) -> dict:
    cfg: dict = {
        "bootstrap.servers": settings.bootstrap_servers,
        "group.id": group_id or "playlog-reader",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "isolation.level": "read_committed",
        "fetch.min.bytes": 1,
        "queued.max.messages.kbytes": 262144,
        "logger": client_logger(__name__),
    }
    cfg.update(extra)
    return cfg


def _to_record(msg: object) -> Record:
    return Record(
        msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(),  # type: ignore[attr-defined]
        msg.timestamp()[1], tuple(msg.headers() or ()),  # type: ignore[attr-defined]
    )


_RETRIABLE = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
              KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TIMED_OUT}


def end_offsets(consumer: Consumer, topics: Iterable[str], timeout: float = 10.0) -> dict[tuple[str, int], tuple[int, int]]:
    """(topic, partition) -> (low, high) watermarks now (retried while a new topic elects its leaders)."""
    out = {}
    md = consumer.list_topics(timeout=timeout)
    for t in topics:
        if t not in md.topics or md.topics[t].error is not None:
            raise PlaylogError(f"topic {t} does not exist; run 'playlog topics create'")
        for p in md.topics[t].partitions:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    out[(t, p)] = consumer.get_watermark_offsets(TopicPartition(t, p), timeout=timeout)
                    break
                except KafkaException as exc:
                    if exc.args[0].code() not in _RETRIABLE or time.monotonic() > deadline:
                        raise PlaylogError(f"cannot read the end offsets of {t}[{p}]: {exc.args[0].str()}") from None
                    time.sleep(0.1)
    return out


def iter_batches(
    settings: Settings, topics: list[str], *, group_id: str | None = None, until_end: bool = True,
    batch_size: int = 5000, poll_timeout: float = 0.5, idle_timeout: float | None = None,
    start_offsets: dict[tuple[str, int], int] | None = None,
    consumer: Consumer | None = None,
) -> Iterator[list[Record]]:
    """Batches of records from full topic names.

    - ``group_id`` None: no group; read every partition from its beginning (or ``start_offsets``).
    - ``group_id`` set: subscribe as that consumer group (the caller commits via ``commit``).
    - ``until_end``: stop once every partition reached the end offset it had when reading began.
    - ``idle_timeout``: stop after that many seconds without a record (follow mode).
    """
    own = consumer is None
    consumer = consumer or Consumer(consumer_config(settings, group_id))
    try:
        ends = end_offsets(consumer, topics)
        remaining = {tp for tp, (lo, hi) in ends.items() if hi > lo}
        if group_id is None:
            consumer.assign([
                TopicPartition(t, p, (start_offsets or {}).get((t, p), OFFSET_BEGINNING)) for (t, p) in ends
            ])
            if start_offsets:
                remaining = {tp for tp in remaining if start_offsets.get(tp, 0) < ends[tp][1]}
        else:
            consumer.subscribe(topics)
        last = time.monotonic()
        while True:
            if until_end and not remaining and group_id is None:
                return
            msgs = consumer.consume(batch_size, poll_timeout)
            batch = []
            for m in msgs:
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise PlaylogError(f"consume failed: {m.error().str()}")
                r = _to_record(m)
                batch.append(r)
                tp = (r.topic, r.partition)
                if tp in remaining and r.offset + 1 >= ends[tp][1]:
                    remaining.discard(tp)
            if batch:
                last = time.monotonic()
                yield batch
            elif until_end and group_id is not None and not remaining:
                return
            elif idle_timeout is not None and time.monotonic() - last > idle_timeout:
                return
            if until_end and group_id is not None and not remaining:
                return
    finally:
        if own:
            consumer.close()


def iter_records(settings: Settings, topics: list[str], **kwargs: object) -> Iterator[Record]:
    """Records one by one (see :func:`iter_batches`)."""
    for batch in iter_batches(settings, topics, **kwargs):  # type: ignore[arg-type]
        yield from batch


def commit(consumer: Consumer, records: list[Record]) -> None:
    """Synchronously commit the offsets after ``records`` (call only once their effects are durable)."""
    last: dict[tuple[str, int], int] = {}
    for r in records:
        last[(r.topic, r.partition)] = max(last.get((r.topic, r.partition), -1), r.offset)
    if last:
        consumer.commit(offsets=[TopicPartition(t, p, o + 1) for (t, p), o in last.items()], asynchronous=False)
