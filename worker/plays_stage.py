"""The plays stage: listening events -> play summaries -> ``royalty.inputs`` (on the partition of
their play_id), on the hot path.

Faust moves records one by one through its stream machinery (here about 8,000 records/s per
process, whatever the agent does), which is too slow for the busiest topic. This stage is the
same thin step as the Faust ``listening`` agent (decode, :func:`batches.play_summaries`,
dead-letter) driven by confluent-kafka batches instead: a consumer group, so several processes
share the listening partitions.

Delivery: at-least-once. A batch's facts are produced and flushed *before* its offsets are
committed; a crash in between re-sends facts that are joins (min/max), so a repeat changes
nothing. Stateless: nothing to recover after a crash or a rebalance.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from confluent_kafka import Consumer, KafkaError

from core.settings import Settings
from processors import batches
from processors.royalty_parts import part_of
from schemas.codec import default_codec
from topics.deadletter import DEADLETTER_TOPIC, deadletter_record
from topics.kafka_io import EventProducer, consumer_config
from topics.lag import init_group_offsets
from topics.topic_catalog import topic_spec

log = logging.getLogger(__name__)


def group_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}plays"


def run(settings: Settings, stop: threading.Event | None = None, batch: int = 20_000) -> None:
    """Consume until ``stop`` is set (or SIGTERM/SIGINT when run as a process)."""
    stop = stop or threading.Event()
    codec = default_codec()
    prefix = settings.topic_prefix
    inputs = prefix + "royalty.inputs"
    parts = topic_spec("royalty.inputs").partitions
    consumer = Consumer(consumer_config(settings, group_id(settings), **{
        "fetch.max.bytes": 64 * 1024 * 1024, "max.partition.fetch.bytes": 8 * 1024 * 1024,
        "session.timeout.ms": 10_000, "heartbeat.interval.ms": 2_000,
    }))
    producer = EventProducer(settings, codec, **{"linger.ms": 20})
    init_group_offsets(settings, group_id(settings), [prefix + "listening"])  # committed everywhere, empty too
    consumer.subscribe([prefix + "listening"])
    processed = 0
    t_log = time.monotonic()
    try:
        while not stop.is_set():
            msgs = consumer.consume(batch, 0.2)
            if not msgs:
                continue
            recs = []
            for m in msgs:
                err = m.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        log.warning("consume error: %s", err.str())
                    continue
                recs.append(batches.RawRecord(m.topic(), m.partition(), m.offset(), m.value()))
            good, dead = batches.decode_batch(codec, recs, prefix=prefix)
            for d in dead:
                key, value, headers = deadletter_record(d.record, d.reason)
                producer.produce_raw(prefix + DEADLETTER_TOPIC, value, key=key, headers=headers)
            facts = [batches.fact_of_summary(s) for s in batches.play_summaries(ev for _, ev in good)]
            by_part: dict[int, list[tuple[str, bytes]]] = {}
            for k, raw in facts:  # to the royalty join partition of the play_id (worker/royalty.py)
                by_part.setdefault(part_of(k[2:], parts), []).append((k, raw))
            first = recs[0]
            for p, items in sorted(by_part.items()):
                for i, packed in enumerate(batches.pack_facts(items)):
                    producer.produce_raw(inputs, packed, partition=p,
                                         key=f"plays:{first.topic}:{first.partition}:{first.offset}:{p}:{i}")
            producer.flush()  # facts durable before the offsets that produced them are committed
            consumer.commit(asynchronous=False)
            processed += len(recs)
            if time.monotonic() - t_log > 10:
                log.info("plays stage: %d listening events processed", processed)
                t_log = time.monotonic()
    finally:
        consumer.close()


def run_process(settings: Settings) -> None:
    """Entry point of the stage's own process (started by ``playlog worker``)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(settings, stop)
