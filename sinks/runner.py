"""The sink worker loop: consume event topics, decode, write, flush, then commit.

Checkpoint order, in terms of failures (quix-streams' reasoning):
1. records that do not decode, do not belong on their topic or break an invariant go to the
   dead-letter topic (never dropped), with the reason of schemas/validate.py;
2. records the sink cannot write (``sink.reject(batch)``: e.g. a value its column type cannot
   hold) go there too, with ``"<sink> sink cannot write <type>: <why>"``;
3. ``sink.write(batch)`` then ``sink.flush()``: the batch is durable in the sink. When the flush
   raises one of the sink's ``data_errors`` (its store refused a value), the batch is discarded and
   written again in halves until each refused record is alone: that record is dead-lettered and
   the others are written. If every record of a batch of several is refused, the fault is not in
   the records: the error stops the sink as any other does (a full disk, a server down);
4. the dead-letter producer is flushed: every bad record is durable in the dead-letter topic;
5. only then the consumer group's offsets are committed (past the bad records too).
A crash before 5 re-delivers the batch from the last commit; every sink is idempotent on
(topic, partition, offset), so the rerun leaves no duplicate, and nothing was committed that
was not durable, so there is no gap. A poison pill never stops a sink: it is accounted for in
the dead-letter topic and the sink goes on.

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
from processors.grants import check_client_event
from schemas.codec import Codec, EventError, default_codec
from schemas.validate import decode_record
from sinks.base import Record, Sink
from topics.topic_catalog import topic_rule

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
            ev = check_client_event(decode_record(codec, r.value, *topic_rule(r.topic, prefix)))
        except EventError as exc:
            bad.append((r, exc.reason))
            continue
        topic = _bare(r.topic, prefix)
        key = r.key.decode("utf-8", "replace") if isinstance(r.key, bytes) else r.key
        good.append((topic, r.partition, r.offset, key, ev))
    return good, bad


def _bare(topic: str, prefix: str) -> str:
    return topic[len(prefix):] if prefix and topic.startswith(prefix) else topic


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]


def _cannot_write(sink: Sink, rec: Record, why: str) -> str:
    return f"{sink.name} sink cannot write {rec[4]['type']}: {why}"


def _flush_isolating(sink: Sink, records: list[Record], errors: tuple[type[BaseException], ...],
                     top: bool = True) -> list[tuple[Record, str]]:
    """Flush what was written; on a data error, rewrite ``records`` in halves until each refused
    record is alone. Returns the refused records with their reason (see the module doc, step 3)."""
    try:
        sink.flush()
        return []
    except errors as exc:
        sink.discard()  # type: ignore[attr-defined]
        if not records:
            raise
        if len(records) == 1:
            return [(records[0], _cannot_write(sink, records[0], _one_line(exc)))]
        log.warning("sink %s refused a batch of %d records (%s): isolating the refused ones",
                    sink.name, len(records), _one_line(exc))
        original = exc
    mid = len(records) // 2
    refused: list[tuple[Record, str]] = []
    for part in (records[:mid], records[mid:]):
        sink.write(part)
        refused += _flush_isolating(sink, part, errors, top=False)
    if top and len(refused) == len(records):
        raise original  # every record refused: the store, not the records, is at fault
    return refused


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
        raw_of = None
        reject = getattr(sink, "reject", None)
        rejected = [(good[i], _cannot_write(sink, good[i], why)) for i, why in reject(good)] if reject else []
        if rejected:
            skip = {id(rec) for rec, _ in rejected}
            good = [rec for rec in good if id(rec) not in skip]
        errors = tuple(getattr(sink, "data_errors", ())) if hasattr(sink, "discard") else ()
        if errors:
            good = list({(r[0], r[1], r[2]): r for r in good}.values())  # one copy per key: halves stay apart
        sink.write(good)
        _fault("before_flush", stats.batches)
        if errors:
            refused = _flush_isolating(sink, good, errors)
        else:
            sink.flush()
            refused = []
        for rec, reason in rejected + refused:
            if raw_of is None:
                raw_of = {(_bare(r.topic, prefix), r.partition, r.offset): r for r in batch}
            dead_letter(raw_of[(rec[0], rec[1], rec[2])], reason)
        stats.dead_lettered += len(rejected) + len(refused)
        flush_dead_letters()
        _fault("after_flush", stats.batches)
        commit(batch)
        stats.written += len(good) - len(refused)
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
    from topics.lag import init_group_offsets
    from topics.producer import EventProducer, dead_letter

    full = [settings.topic_prefix + t for t in topics]
    # every partition gets a committed offset, empty ones too: the group's lag is then defined on
    # all of them (an operator's "lag 0, committed everywhere" check, tests/support/chaos.py)
    init_group_offsets(settings, group_id, full)
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
