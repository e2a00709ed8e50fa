"""The plays stage: listening events -> play summaries -> ``royalty.inputs`` (on the partition of
their play_id), on the hot path.

Faust moves records one by one through its stream machinery (here about 8,000 records/s per
process, whatever the agent does), which is too slow for the busiest topic. This stage is the
same thin step as the Faust ``listening`` agent (decode, :func:`batches.play_summaries`,
dead-letter) driven by confluent-kafka batches instead: a consumer group, so several processes
share the listening partitions.

Delivery: at-least-once. A batch's offsets are committed only once its facts are acknowledged
(worker/inflight.py; up to :data:`MAX_IN_FLIGHT` further batches may be read meanwhile); a crash
in between re-sends facts that are joins (min/max), so a repeat changes nothing. A rebalance
flushes and commits first. Stateless: nothing to recover after a crash or a rebalance.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from confluent_kafka import Consumer, KafkaError, TopicPartition

from core.errors import PlaylogError
from core.settings import Settings
from processors import batches
from processors.royalty_parts import part_of
from schemas.codec import default_codec
from topics.deadletter import DEADLETTER_TOPIC, deadletter_record
from topics.kafka_io import EventProducer, consumer_config
from topics.lag import init_group_offsets
from topics.schema_registry import configure as configure_schema_ids
from topics.topic_catalog import topic_spec
from worker.inflight import InFlight

log = logging.getLogger(__name__)

# batches produced but not yet all acknowledged while the next one is read. 0: each batch is
# acknowledged before the next is read. Measured (bench pipeline, 1 worker, 600k events, quiet
# machine, alternating runs): 0 gave 27,500-27,900 events/s, 3 gave 25,600-25,700. On 2 cores the
# stage is CPU bound; reading ahead only made its batches smaller.
MAX_IN_FLIGHT = 0


def group_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}plays"


def raw_records(msgs: list) -> list[batches.RawRecord]:
    """The records of a ``consume`` batch (errors other than end-of-partition logged and skipped)."""
    recs = []
    for m in msgs:
        err = m.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                log.warning("consume error: %s", err.str())
            continue
        recs.append(batches.RawRecord(m.topic(), m.partition(), m.offset(), m.value()))
    return recs


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
    inflight = InFlight()

    def commit_done(wait: bool = False) -> None:
        """Commit what is acknowledged; with ``wait``, everything produced (flush) and synchronously."""
        if wait:
            producer.flush()
        else:
            producer.poll(0)
        try:
            offsets = inflight.take_done()
        except ValueError as exc:  # a record failed to deliver: stop; its batch is read again
            raise PlaylogError(str(exc)) from None
        if offsets:
            consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                            asynchronous=not wait)

    def on_revoke(c: Consumer, partitions: list) -> None:  # the new owner starts at what was committed
        commit_done(wait=True)
        inflight.clear()

    consumer.subscribe([prefix + "listening"], on_revoke=on_revoke)
    processed = 0
    t_log = time.monotonic()
    try:
        while not stop.is_set():
            msgs = consumer.consume(batch, 0.2)
            commit_done()
            if not msgs:
                continue
            recs = raw_records(msgs)
            if not recs:
                continue
            pending = inflight.open({(r.topic, r.partition): r.offset + 1 for r in recs})
            good, dead = batches.decode_batch(codec, recs, prefix=prefix)
            for d in dead:
                key, value, headers = deadletter_record(d.record, d.reason)
                pending.expect()
                producer.produce_raw(prefix + DEADLETTER_TOPIC, value, key=key, headers=headers,
                                     on_delivery=pending.report)
            facts = [batches.fact_of_summary(s) for s in batches.play_summaries(ev for _, ev in good)]
            by_part: dict[int, list[tuple[str, bytes]]] = {}
            for k, raw in facts:  # to the royalty join partition of the play_id (worker/royalty.py)
                by_part.setdefault(part_of(k[2:], parts), []).append((k, raw))
            first = recs[0]
            for p, items in sorted(by_part.items()):
                for i, packed in enumerate(batches.pack_facts(items)):
                    pending.expect()
                    producer.produce_raw(inputs, packed, partition=p, on_delivery=pending.report,
                                         key=f"plays:{first.topic}:{first.partition}:{first.offset}:{p}:{i}")
            pending.seal()
            # facts durable before the offsets that produced them are committed (commit_done); the
            # next batch is read meanwhile, up to MAX_IN_FLIGHT batches ahead
            while len(inflight) > MAX_IN_FLIGHT:
                producer.poll(0.05)
                commit_done()
            processed += len(recs)
            if time.monotonic() - t_log > 10:
                log.info("plays stage: %d listening events processed", processed)
                t_log = time.monotonic()
        commit_done(wait=True)
    finally:
        consumer.close()


def run_process(settings: Settings) -> None:
    """Entry point of the stage's own process (started by ``playlog worker``)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure_schema_ids(settings)  # a spawned process: the ids of PLAYLOG_SCHEMA_REGISTRY_URL, as its worker's
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(settings, stop)
