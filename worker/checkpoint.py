"""Checkpoints of the royalty view on the compacted ``royalty.checkpoints`` topic: a fresh worker
(a lost disk, a new node, a change of owner) loads the latest one and reads ``royalty.inputs``
only from the offset it covers, instead of recovering a changelog of every fact ever folded and
folding it again.

A checkpoint is the view's snapshot (``RoyaltyView.to_snapshot``: compressed segments,
processors/snapshot.py; an older format-1 snapshot is one zlib-compressed document), cut into
chunks under Kafka's default message size, written to one of two slots (``A``/``B``), then its
manifest: ``{"id", "slot", "chunks", "through", "facts", "written_at"}``, where ``through`` is the
``royalty.inputs`` offset before which every record is in the snapshot. A writer always fills the
slot the newest manifest does not point to, so a crash (or a zombie owner) half-way through
leaves the other slot's checkpoint whole. A reader takes the newest manifest whose chunks are all
there with its id and whose payload decodes; failing that the older one; failing both, the view
is rebuilt from ``royalty.inputs`` offset 0 (retention -1: the log is the source of truth).

Folding a record again is harmless (facts are joins and latest-wins, worker/app.py), so the tail
may overlap what the snapshot already holds, and the group's commit may trail ``through``.
"""

from __future__ import annotations

import gc
import logging
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import orjson

from core.settings import Settings
from processors.batches import RoyaltyView
from processors.snapshot import MAGIC as SNAPSHOT_MAGIC

log = logging.getLogger(__name__)

TOPIC = "royalty.checkpoints"
INPUTS = "royalty.inputs"
CHUNK_BYTES = 900_000  # under the broker's default message.max.bytes (1 MiB) with headers and key
SLOTS = ("A", "B")
READ_IDLE_TIMEOUT = 60.0
DECODE_PAUSE = 0.001  # seconds between two decoded segments: the worker's other threads run


@dataclass(frozen=True)
class Manifest:
    id: str
    slot: str
    chunks: int
    through: int
    facts: int
    written_at: float

    def to_json(self) -> bytes:
        return orjson.dumps(self.__dict__)

    @classmethod
    def parse(cls, raw: bytes) -> Manifest:
        d = orjson.loads(raw)
        return cls(str(d["id"]), str(d["slot"]), int(d["chunks"]), int(d["through"]), int(d["facts"]),
                   float(d["written_at"]))


# -- pure: records of a checkpoint, and the choice among what the topic holds -----------------------
def _key(name: str, what: str) -> bytes:
    """The record key of a checkpoint part of the view ``name`` ("" is the single royalty view of
    earlier versions: keys without a name)."""
    return (f"{name}/{what}" if name else what).encode()


def records_of(snapshot: bytes, *, slot: str, through: int, facts: int, ckpt_id: str | None = None,
               now: float | None = None, name: str = "") -> list[tuple[bytes, bytes]]:
    """The ``(key, value)`` records of one checkpoint of the view ``name``: its chunks, then its
    manifest (last)."""
    ckpt_id = ckpt_id or uuid.uuid4().hex
    # a format-2 snapshot's segments are compressed already (processors/snapshot.py)
    payload = snapshot if snapshot.startswith(SNAPSHOT_MAGIC) else zlib.compress(snapshot, 1)
    chunks = [payload[i : i + CHUNK_BYTES] for i in range(0, len(payload), CHUNK_BYTES)] or [b""]
    out = [(_key(name, f"{slot}:{i}"), ckpt_id.encode() + b"\n" + c) for i, c in enumerate(chunks)]
    # stale chunks of an earlier, longer checkpoint in this slot are harmless: the manifest counts
    manifest = Manifest(ckpt_id, slot, len(chunks), through, facts, time.time() if now is None else now)
    out.append((_key(name, f"manifest:{slot}"), manifest.to_json()))
    return out


def candidates(records: Iterable[tuple[bytes, bytes | None]], name: str = "") -> list[tuple[Manifest, bytes]]:
    """The complete checkpoints of the view ``name`` among the topic's records (latest value per
    key, as compaction keeps), newest first: ``(manifest, compressed payload)``."""
    latest: dict[bytes, bytes | None] = {}
    for key, value in records:
        latest[key] = value
    found = []
    for slot in SLOTS:
        raw = latest.get(_key(name, f"manifest:{slot}"))
        if not raw:
            continue
        try:
            m = Manifest.parse(raw)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.warning("checkpoint manifest of slot %s unreadable (%s): ignored", slot, exc)
            continue
        parts = []
        for i in range(m.chunks):
            v = latest.get(_key(name, f"{slot}:{i}"))
            ckpt_id, sep, chunk = (v or b"").partition(b"\n")
            if not sep or ckpt_id.decode(errors="replace") != m.id:
                log.warning("checkpoint %s (slot %s) incomplete: chunk %d missing or of another checkpoint",
                            m.id, slot, i)
                break
            parts.append(chunk)
        else:
            found.append((m, b"".join(parts)))
    found.sort(key=lambda mp: (mp[0].through, mp[0].written_at), reverse=True)
    return found


def restore(records: Iterable[tuple[bytes, bytes | None]], pause: float = 0.0, name: str = ""
            ) -> tuple[RoyaltyView, Manifest] | None:
    """The view of the newest checkpoint that decodes, with its manifest; None when there is none.
    (``pause``: seconds the decoding thread sleeps between two segments, processors/snapshot.py.)"""
    for m, payload in candidates(records, name):
        try:
            raw = payload if payload.startswith(SNAPSHOT_MAGIC) else zlib.decompress(payload)
            return RoyaltyView.from_snapshot(raw, pause), m
        except (zlib.error, ValueError) as exc:
            log.warning("checkpoint %s (slot %s) does not decode (%s): trying an older one", m.id, m.slot, exc)
    return None


def next_slot(last: Manifest | None) -> str:
    return SLOTS[0] if last is None or last.slot == SLOTS[1] else SLOTS[1]


# -- Kafka: blocking calls, run in a thread by the worker --------------------------------------------
def read_topic(settings: Settings, topic: str, start: int = 0, end: int | None = None, partition: int = 0
               ) -> Iterator[tuple[int, bytes | None, bytes | None]]:
    """``(offset, key, value)`` of a partition of ``topic`` from ``start`` up to ``end`` (default:
    the end offset when called)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    from topics.kafka_io import consumer_config

    name = settings.topic_prefix + topic
    c = Consumer(consumer_config(settings, f"{settings.topic_prefix}checkpoint-reader", **{
        "enable.auto.commit": False, "fetch.max.bytes": 64 * 1024 * 1024,
        "max.partition.fetch.bytes": 16 * 1024 * 1024}))
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(name, partition), timeout=30)
        stop = hi if end is None else min(end, hi)
        first = max(start, lo)
        if first >= stop:
            return
        c.assign([TopicPartition(name, partition, first if first > 0 else OFFSET_BEGINNING)])
        pos = first
        idle_since = time.monotonic()
        while pos < stop:
            msgs = c.consume(1000, 1.0)
            if msgs:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > READ_IDLE_TIMEOUT:
                raise RuntimeError(f"reading {name}: nothing from offset {pos} (end {stop}) for {READ_IDLE_TIMEOUT:.0f}s")
            for m in msgs:
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise RuntimeError(f"reading {name}: {m.error()}")
                if m.offset() >= stop:
                    return
                pos = m.offset() + 1
                yield m.offset(), m.key(), m.value()
    finally:
        c.close()


def end_offset(settings: Settings, topic: str, partition: int = 0) -> int:
    from confluent_kafka import Consumer, TopicPartition

    from topics.kafka_io import consumer_config

    c = Consumer(consumer_config(settings, f"{settings.topic_prefix}checkpoint-reader"))
    try:
        return c.get_watermark_offsets(TopicPartition(settings.topic_prefix + topic, partition), timeout=30)[1]
    finally:
        c.close()


def load_latest(settings: Settings, name: str = "") -> tuple[RoyaltyView, Manifest] | None:
    return restore(((k or b"", v) for _, k, v in read_topic(settings, TOPIC)), pause=DECODE_PAUSE, name=name)


@contextmanager
def no_gc_while_building() -> Iterator[None]:
    """Build a big view without the cyclic GC, then freeze what was built.

    A view of millions of plays is tens of millions of objects, and none of them is garbage; a full
    collection walks all of them, holding the GIL for seconds (the worker's consumer thread then
    misses heartbeats). The collector is off while the view is built, and ``gc.freeze`` then moves
    everything alive into the permanent generation, so later collections do not walk it again."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.freeze()


@dataclass
class Recovered:
    view: RoyaltyView
    manifest: Manifest | None
    through: int  # every royalty.inputs record before this offset is in the view
    tail_records: int  # records of the partition folded after the checkpoint
    seconds_checkpoint: float
    seconds_tail: float

    def describe(self) -> str:
        ckpt = (f"checkpoint {self.manifest.slot} ({self.manifest.facts} facts, before offset {self.manifest.through})"
                if self.manifest else "no checkpoint")
        return (f"{ckpt} in {self.seconds_checkpoint:.1f}s, then {self.tail_records} input record(s) "
                f"to offset {self.through} in {self.seconds_tail:.1f}s; {self.view.facts} facts")


def recover(settings: Settings, name: str, topic: str, partition: int,
            fold: Callable[[RoyaltyView, list[tuple[int, bytes]]], None]) -> Recovered:
    """The view a new owner of ``topic``'s ``partition`` starts from: the newest checkpoint of the
    view ``name`` that decodes (or an empty view), then every record of the partition from the
    offset it covers to the end offset now, folded by ``fold(view, [(offset, value)])`` (the agent's own
    step: records that do not unpack, and facts the view refuses, were dead-lettered when first
    folded, so the fold skips them)."""
    with no_gc_while_building():
        t0 = time.perf_counter()
        got = load_latest(settings, name)
        view, manifest = got if got else (RoyaltyView(), None)
        t1 = time.perf_counter()
        end = end_offset(settings, topic, partition)
        n = 0
        batch: list[tuple[int, bytes]] = []
        for offset, _, value in read_topic(settings, topic, manifest.through if manifest else 0, end, partition):
            n += 1
            batch.append((offset, value or b""))
            if len(batch) >= 100:
                fold(view, batch)
                batch = []
        fold(view, batch)
    return Recovered(view, manifest, end, n, t1 - t0, time.perf_counter() - t1)


def write(settings: Settings, records: list[tuple[bytes, bytes]]) -> None:
    """Produce a checkpoint's records in order and wait until the broker has them all."""
    from confluent_kafka import Producer

    from topics.kafka_io import producer_config

    p = Producer(producer_config(settings, **{"linger.ms": 5, "compression.type": "none",
                                              "message.max.bytes": 1_000_000}))
    errors: list[str] = []

    def on_delivery(err, msg) -> None:  # noqa: ANN001 - confluent-kafka's callback
        if err is not None:
            errors.append(str(err))

    name = settings.topic_prefix + TOPIC
    for key, value in records:
        while True:
            try:
                p.produce(name, value=value, key=key, partition=0, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.1)
    left = p.flush(60)
    if left or errors:
        raise RuntimeError(f"checkpoint not written: {left} record(s) unsent, errors {errors[:3]}")
