"""Consumer-group lag: how far a group's committed offsets trail the topics' end offsets."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from playlog.config import Settings
from topics.kafka_io import consumer_config, end_offsets


def group_lag(settings: Settings, group_id: str, topics: list[str], timeout: float = 10.0) -> dict[str, int]:
    """topic -> records not yet committed by ``group_id`` (a partition never committed counts whole)."""
    c = Consumer(consumer_config(settings, group_id))
    try:
        ends = end_offsets(c, topics, timeout)
        committed = c.committed([TopicPartition(t, p) for (t, p) in ends], timeout=timeout)
        lag: dict[str, int] = {t: 0 for t in topics}
        for tp in committed:
            lo, hi = ends[(tp.topic, tp.partition)]
            pos = tp.offset if tp.offset >= 0 else lo
            lag[tp.topic] += max(0, hi - pos)
        return lag
    finally:
        c.close()
