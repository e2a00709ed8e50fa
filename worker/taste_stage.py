"""The taste stage: listening events -> per-user taste states (``taste.state``) and their documents
(``view.taste``), so API replicas read one bounded document per user instead of folding the whole
listening topic at start.

A confluent-kafka consumer group (``<prefix>taste``) shares the listening partitions between the
stages of every worker (``playlog worker`` starts one, restarted when it dies). Both output topics
have the partition count of ``listening`` and each state goes to the partition number of the
listening record it came from, so the stage that owns listening partition p owns the states of
partition p of ``taste.state``: on assignment it loads them from there (the changelog pattern: a
stage whose local disk is gone loses nothing), on revocation it flushes, commits and forgets them.

Per batch: decode (malformed records to the dead-letter topic, with the reason), fold each event with
:func:`processors.taste_view.evolve` (the same fold the tests drive without a broker), produce the
changed states and their view documents, wait for the broker's acknowledgement, then commit the
offsets. A crash in between re-reads the batch; the states' ``offset`` makes those records no-ops.

The catalog and users views are followed in the same loop (every partition assigned, no group): track
ids resolve to canonical ids with their artists and genres as the API resolves them
(:class:`processors.catalog.CatalogIndex` over each track document's ``first``), and a user whose
document says ``erased`` gets tombstones on both topics and nothing folded any more. The stage waits
until it has caught up with both views before it folds listening, so after a restart it does not fold
plays of tracks it does not know yet.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from core.settings import Settings
from processors import batches, taste_view
from processors import catalog as catalog_fold
from schemas.codec import default_codec
from topics.client_log import client_logger
from topics.deadletter import DEADLETTER_TOPIC, deadletter_record
from topics.kafka_io import EventProducer, consumer_config
from topics.lag import init_group_offsets
from topics.schema_registry import configure as configure_schema_ids
from worker.plays_stage import raw_records

log = logging.getLogger(__name__)

STATE_TOPIC = "taste.state"
VIEW_TOPIC = "view.taste"


def group_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}taste"


class Lookups:
    """What the stage knows of the catalog and the users, from their view topics (pure: ``apply``)."""

    def __init__(self) -> None:
        self.index = catalog_fold.CatalogIndex()
        self.tracks: dict[str, dict] = {}
        self.erased: set[str] = set()
        self.newly_erased: set[str] = set()

    def apply(self, topic_kind: str, key: str, doc: dict | None) -> None:
        if topic_kind == "users":
            if doc is not None and doc.get("erased") and key not in self.erased:
                self.erased.add(key)
                self.newly_erased.add(key)
            return
        kind, _, track_id = key.partition(":")
        if kind != "track":
            return
        if doc is None:
            self.tracks.pop(track_id, None)
            return
        self.tracks[track_id] = doc
        first = doc.get("first")
        if first:
            self.index.evolve({"type": "track.ingested", "track_id": track_id, "isrc": first["isrc"],
                               "occurred_at": first["at"], "event_id": first["event_id"]})

    def info(self, track_id: str) -> tuple[str, list[str], list[str]] | None:
        canon = self.index.canonical_id(track_id) or track_id
        doc = self.tracks.get(canon) or self.tracks.get(track_id)
        if doc is None:
            return None
        return canon, list(doc.get("artist_ids") or []), list(doc.get("genres") or [])


class ViewFollower:
    """Follow ``view.catalog`` and ``view.users`` (every partition, from the beginning, no group)."""

    def __init__(self, settings: Settings, lookups: Lookups) -> None:
        prefix = settings.topic_prefix
        self.kinds = {prefix + "view.catalog": "catalog", prefix + "view.users": "users"}
        self.lookups = lookups
        self.consumer = Consumer({
            "bootstrap.servers": settings.bootstrap_servers, "group.id": f"{prefix}taste-lookups",
            "enable.auto.commit": False, "enable.auto.offset.store": False, "enable.partition.eof": True,
            "auto.offset.reset": "earliest", "logger": client_logger(__name__),
        })
        self.targets: dict[tuple[str, int], int] = {}
        self.positions: dict[tuple[str, int], int] = {}

    def assign(self, stop: threading.Event) -> bool:
        while not stop.is_set():
            md = self.consumer.list_topics(timeout=5)
            if all(t in md.topics and md.topics[t].error is None for t in self.kinds):
                parts = [TopicPartition(t, p) for t in self.kinds for p in md.topics[t].partitions]
                for tp in parts:
                    self.targets[(tp.topic, tp.partition)] = self.consumer.get_watermark_offsets(tp, timeout=5)[1]
                self.consumer.assign([TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in parts])
                return True
            log.info("taste stage: waiting for %s", ", ".join(sorted(self.kinds)))
            stop.wait(1.0)
        return False

    def caught_up(self) -> bool:
        return all(self.positions.get(tp, 0) >= hi for tp, hi in self.targets.items())

    def poll(self, timeout: float) -> int:
        n = 0
        for m in self.consumer.consume(5000, timeout):
            tp = (m.topic(), m.partition())
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    self.positions[tp] = max(self.positions.get(tp, 0), m.offset())
                else:
                    log.warning("taste stage view consume error: %s", err.str())
                continue
            try:
                doc = orjson.loads(m.value()) if m.value() is not None else None
            except orjson.JSONDecodeError as exc:
                log.warning("taste stage: undecodable %s@%d: %s", m.topic(), m.offset(), exc)
                doc = None
            self.lookups.apply(self.kinds[m.topic()], m.key().decode() if m.key() else "", doc)
            self.positions[tp] = m.offset() + 1
            n += 1
        return n

    def close(self) -> None:
        self.consumer.close()


def load_states(settings: Settings, partitions: list[int]) -> dict[int, dict[str, dict]]:
    """The states of ``taste.state`` partitions, read to their current end."""
    topic = settings.topic_prefix + STATE_TOPIC
    out: dict[int, dict[str, dict]] = {p: {} for p in partitions}
    if not partitions:
        return out
    c = Consumer(consumer_config(settings, None, **{"enable.partition.eof": True}))
    try:
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        todo = {p for p, hi in ends.items() if hi > 0}
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in todo])
        while todo:
            for m in c.consume(10_000, 1.0):
                p = m.partition()
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF and m.offset() >= ends[p]:
                        todo.discard(p)
                    continue
                key = m.key().decode()
                if m.value() is None:
                    out[p].pop(key, None)
                else:
                    out[p][key] = orjson.loads(m.value())
                if m.offset() + 1 >= ends[p]:
                    todo.discard(p)
    finally:
        c.close()
    return out


def run(settings: Settings, stop: threading.Event | None = None, batch: int = 5000) -> None:
    """Consume until ``stop`` is set (or SIGTERM/SIGINT when run as a process)."""
    stop = stop or threading.Event()
    codec = default_codec()
    prefix = settings.topic_prefix
    listening = prefix + "listening"
    state_t, view_t = prefix + STATE_TOPIC, prefix + VIEW_TOPIC
    lookups = Lookups()
    follower = ViewFollower(settings, lookups)
    if not follower.assign(stop):
        follower.close()
        return
    while not stop.is_set() and not follower.caught_up():
        follower.poll(0.5)
    log.info("taste stage: caught up with the catalog (%d tracks) and users views", len(lookups.tracks))
    producer = EventProducer(settings, codec, **{"linger.ms": 20})
    states: dict[int, dict[str, dict]] = {}
    consumer = Consumer(consumer_config(settings, group_id(settings), **{
        "session.timeout.ms": 10_000, "heartbeat.interval.ms": 2_000, "max.poll.interval.ms": 600_000,
    }))
    init_group_offsets(settings, group_id(settings), [listening])

    def put(p: int, user_id: str, state: dict | None) -> None:
        key = user_id.encode()
        if state is None:
            producer.produce_raw(state_t, None, key=key, partition=p)
            producer.produce_raw(view_t, None, key=key, partition=p)
        else:
            producer.produce_raw(state_t, orjson.dumps(state), key=key, partition=p)
            producer.produce_raw(view_t, orjson.dumps(taste_view.to_view(state)), key=key, partition=p)

    def on_assign(c: Consumer, partitions: list) -> None:
        t0 = time.monotonic()
        loaded = load_states(settings, [tp.partition for tp in partitions])
        for p, held in loaded.items():  # erased while no stage held the partition: tombstoned now
            for uid in [u for u in held if u in lookups.erased]:
                del held[uid]
                put(p, uid, None)
        states.update(loaded)
        log.info("taste stage: partitions %s assigned, %d states loaded in %.1fs",
                 sorted(loaded), sum(len(v) for v in loaded.values()), time.monotonic() - t0)

    def on_revoke(c: Consumer, partitions: list) -> None:
        producer.flush()
        for tp in partitions:
            states.pop(tp.partition, None)

    consumer.subscribe([listening], on_assign=on_assign, on_revoke=on_revoke)
    processed, t_log = 0, time.monotonic()
    try:
        while not stop.is_set():
            follower.poll(0)
            for uid in sorted(lookups.newly_erased):
                for p, held in states.items():
                    if held.pop(uid, None) is not None:
                        put(p, uid, None)
            lookups.newly_erased.clear()
            msgs = consumer.consume(batch, 0.2)
            recs = raw_records(msgs)
            if not recs:
                producer.poll(0)
                continue
            good, dead = batches.decode_batch(codec, recs, prefix=prefix)
            for d in dead:
                key, value, headers = deadletter_record(d.record, d.reason)
                producer.produce_raw(prefix + DEADLETTER_TOPIC, value, key=key, headers=headers)
            changed: dict[tuple[int, str], dict] = {}
            for rec, event in good:
                uid = event.get("user_id")
                held = states.setdefault(rec.partition, {})
                if not isinstance(uid, str) or uid in lookups.erased:
                    continue
                before = held.get(uid)
                after, reason = taste_view.evolve(before, event, lookups.info, offset=rec.offset)
                if reason is not None:
                    key, value, headers = deadletter_record(rec, f"taste: {reason}")
                    producer.produce_raw(prefix + DEADLETTER_TOPIC, value, key=key, headers=headers)
                elif after is not before and after is not None:
                    held[uid] = after
                    changed[(rec.partition, uid)] = after
            for (p, uid), state in changed.items():
                put(p, uid, state)
            producer.flush()  # states durable before the offsets that produced them are committed
            offsets: dict[tuple[str, int], int] = {}
            for r in recs:
                offsets[(r.topic, r.partition)] = max(offsets.get((r.topic, r.partition), 0), r.offset + 1)
            consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
            processed += len(recs)
            if time.monotonic() - t_log > 10:
                log.info("taste stage: %d listening events folded", processed)
                t_log = time.monotonic()
        producer.flush()
    finally:
        consumer.close()
        follower.close()


def run_process(settings: Settings) -> None:
    """Entry point of the stage's own process (started by ``playlog worker``)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure_schema_ids(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(settings, stop)


if __name__ == "__main__":  # python -m worker.taste_stage: the stage alone, with PLAYLOG_* settings
    from core.settings import load

    run_process(load())
