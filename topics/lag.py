"""Consumer-group lag: how far a group's committed offsets trail the topics' end offsets."""

from __future__ import annotations

import time
from typing import NamedTuple

from confluent_kafka import Consumer, TopicPartition

from core.errors import PlaylogError
from core.settings import Settings
from topics.kafka_io import consumer_config, end_offsets

_TRANSIENT = ("NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE")


def committed_offsets(c: Consumer, tps: list[TopicPartition], timeout: float) -> list[TopicPartition]:
    """``Consumer.committed``, waiting out a group coordinator that is still loading or moving (a
    fresh or restarted broker answers NOT_COORDINATOR for a while)."""
    from confluent_kafka import KafkaException

    deadline = time.monotonic() + 3 * timeout
    while True:
        try:
            return c.committed(tps, timeout=timeout)
        except KafkaException as exc:
            if not any(code in str(exc) for code in _TRANSIENT) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def group_lag(settings: Settings, group_id: str, topics: list[str], timeout: float = 10.0) -> dict[str, int]:
    """topic -> records not yet committed by ``group_id`` (a partition never committed counts whole)."""
    c = Consumer(consumer_config(settings, group_id))
    try:
        ends = end_offsets(c, topics, timeout)
        committed = committed_offsets(c, [TopicPartition(t, p) for (t, p) in ends], timeout)
        lag: dict[str, int] = {t: 0 for t in topics}
        for tp in committed:
            lo, hi = ends[(tp.topic, tp.partition)]
            pos = tp.offset if tp.offset >= 0 else lo
            lag[tp.topic] += max(0, hi - pos)
        return lag
    finally:
        c.close()


def init_group_offsets(settings: Settings, group_id: str, topics: list[str], timeout: float = 10.0) -> int:
    """Commit the low watermark for every partition the group has never committed; returns how many.

    Faust (0.15) never commits a partition whose group offset is still unset when it started
    reading it at a record whose offset is not 0 (e.g. after retention) and, as seen here, sometimes
    not even from 0: the lag then never reaches zero although everything is processed. Starting
    from an explicit committed offset avoids that path. Best effort: a group with live members
    refuses commits from outside, and then its offsets are already set anyway.
    """
    import logging

    from confluent_kafka import KafkaException

    log = logging.getLogger(__name__)
    c = Consumer(consumer_config(settings, group_id))
    try:
        deadline = time.monotonic() + 3 * timeout
        while True:
            try:  # a fresh broker answers NOT_COORDINATOR while its group coordinator loads
                ends = end_offsets(c, topics, timeout)
                committed = c.committed([TopicPartition(t, p) for (t, p) in ends], timeout=timeout)
                todo = [TopicPartition(tp.topic, tp.partition, ends[(tp.topic, tp.partition)][0])
                        for tp in committed if tp.offset < 0]
                if todo:
                    c.commit(offsets=todo, asynchronous=False)
                return len(todo)
            except (KafkaException, PlaylogError) as exc:
                if time.monotonic() > deadline:
                    log.warning("could not initialise the offsets of group %s: %s", group_id, exc)
                    return 0
                time.sleep(0.5)
    finally:
        c.close()


class PartitionLag(NamedTuple):
    committed: int  # the group's next offset to read (the low watermark when never committed)
    end: int  # the high watermark
    lag: int  # records not yet committed
    oldest_unprocessed_ms: int | None  # Kafka timestamp of the first record not yet committed


def partition_lag(settings: Settings, group_id: str, topics: list[str], *, with_times: bool = True,
                  timeout: float = 10.0) -> dict[tuple[str, int], PartitionLag]:
    """Per (topic, partition): the group's committed offset, the end offset, the lag in records and
    (``with_times``) the timestamp of the oldest record not yet committed, from which the lag in
    seconds follows (now minus that timestamp)."""
    c = Consumer({**consumer_config(settings, group_id), "enable.auto.commit": False})
    try:
        ends = end_offsets(c, topics, timeout)
        committed = committed_offsets(c, [TopicPartition(t, p) for (t, p) in ends], timeout)
        out: dict[tuple[str, int], PartitionLag] = {}
        behind: list[TopicPartition] = []
        for tp in committed:
            lo, hi = ends[(tp.topic, tp.partition)]
            pos = tp.offset if tp.offset >= 0 else lo
            out[(tp.topic, tp.partition)] = PartitionLag(pos, hi, max(0, hi - pos), None)
            if hi > pos:
                behind.append(TopicPartition(tp.topic, tp.partition, max(pos, lo)))
        if with_times and behind:
            c.assign(behind)
            want = {(tp.topic, tp.partition) for tp in behind}
            deadline = time.monotonic() + timeout
            while want and time.monotonic() < deadline:
                for msg in c.consume(num_messages=len(want), timeout=0.5):
                    key = (msg.topic(), msg.partition())
                    if msg.error() is None and key in want:
                        want.discard(key)
                        kind, ts = msg.timestamp()
                        if kind != 0:  # TIMESTAMP_NOT_AVAILABLE
                            out[key] = out[key]._replace(oldest_unprocessed_ms=ts)
                        c.pause([TopicPartition(*key)])
        return out
    finally:
        c.close()
