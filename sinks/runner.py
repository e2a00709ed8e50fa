"""The sink worker loop: consume event topics, decode, write, flush, then commit.

Checkpoint order, in terms of failures (quix-streams' reasoning):
1. records that do not decode or break an invariant go to the dead-letter topic (never dropped);
2. ``sink.write(batch)`` then ``sink.flush()``: the batch is durable in the sink;
3. the dead-letter producer is flushed: every bad record is durable in the dead-letter topic;
4. only then the consumer group's offsets are committed.
A crash before 4 re-delivers the batch from the last commit; every sink is idempotent on
(topic, partition, offset), so the rerun leaves no duplicate, and nothing was committed that
was not durable, so there is no gap.

``PLAYLOG_SINK_FAULT=<point>:<n>`` (tests only) kills the process with SIGKILL at the n-th batch at
``point``: ``before_flush`` (written, not flushed), ``after_flush`` (flushed, not committed).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from core.settings import Settings, load
from schemas.codec import Codec, EventError, default_codec
from schemas.validate import decode_record
from sinks.base import Record, Sink

log = logging.getLogger(__name__)


class RawRecord(Protocol):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class RunStats:
    batches: int = 0
    records: int = 0
    written: int = 0
    dead_lettered: int = 0


def decode_batch(
    batch: Iterable[RawRecord], codec: Codec, prefix: str
) -> tuple[list[Record], list[tuple[RawRecord, str]]]:
    """Decoded sink records (topic without the prefix) and the bad ones with their reason."""
    good: list[Record] = []
    bad: list[tuple[RawRecord, str]] = []
    for r in batch:
        try:
            ev = decode_record(codec, r.value)
        except EventError as exc:
            bad.append((r, exc.reason))
            continue
        topic = r.topic[len(prefix):] if prefix and r.topic.startswith(prefix) else r.topic
        key = r.key.decode("utf-8", "replace") if isinstance(r.key, bytes) else r.key
        good.append((topic, r.partition, r.offset, key, ev))
    return good, bad


def _fault(point: str, batch_no: int) -> None:
    spec = load().sink_fault
    if not spec:
        return
    where, _, n = spec.partition(":")
    if where == point and n.isdigit() and int(n) == batch_no:
        log.warning("fault injection: SIGKILL at %s of batch %d", point, batch_no)
        os.kill(os.getpid(), signal.SIGKILL)


def run_batches(
    sink: Sink,
    batches: Iterator[list[RawRecord]],
    commit,
    dead_letter,
    flush_dead_letters,
    prefix: str = "",
    codec: Codec | None = None,
) -> RunStats:
    """The loop over any source of raw batches (Kafka or a test double)."""
    codec = codec or default_codec()
    stats = RunStats()
    for batch in batches:
        stats.batches += 1
        stats.records += len(batch)
        good, bad = decode_batch(batch, codec, prefix)
        for raw, reason in bad:
            dead_letter(raw, reason)
        stats.dead_lettered += len(bad)
        sink.write(good)
        _fault("before_flush", stats.batches)
        sink.flush()
        flush_dead_letters()
        _fault("after_flush", stats.batches)
        commit(batch)
        stats.written += len(good)
    return stats


def run_kafka(
    sink: Sink,
    settings: Settings,
    topics: list[str],
    group_id: str,
    *,
    until_end: bool = True,
    idle_timeout: float | None = None,
    batch_size: int = 5000,
) -> RunStats:
    """Consume ``topics`` (names without the prefix) as ``group_id`` into ``sink``."""
    from confluent_kafka import Consumer, TopicPartition

    from topics.consumer import commit, consumer_config, end_offsets, iter_batches
    from topics.producer import EventProducer, dead_letter

    full = [settings.topic_prefix + t for t in topics]
    consumer = Consumer(consumer_config(settings, group_id))
    producer = EventProducer(settings)
    try:
        # Partitions are assigned explicitly from the group's committed offsets (no group
        # rebalances: one sink worker per group), and commits still go to the group.
        ends = end_offsets(consumer, full)
        committed = consumer.committed([TopicPartition(t, p) for (t, p) in ends], timeout=30)
        start = {(tp.topic, tp.partition): tp.offset for tp in committed if tp.offset >= 0}
        log.info("sink %s resumes from %d committed partition offsets", sink.name, len(start))
        batches = iter_batches(
            settings, full, group_id=None, until_end=until_end, batch_size=batch_size,
            idle_timeout=idle_timeout, start_offsets=start, consumer=consumer,
        )
        return run_batches(
            sink,
            batches,
            commit=lambda batch: commit(consumer, batch),
            dead_letter=lambda raw, reason: dead_letter(producer, raw, reason),
            flush_dead_letters=producer.flush,
            prefix=settings.topic_prefix,
        )
    finally:
        consumer.close()
        producer.flush()
