"""The per-user PII key store on the compacted ``pii.keys`` topic (formats: core/pii.py).

:class:`PiiKeyStore` reads the topic to its end (every key it holds, unwrapped with the key derived
from PLAYLOG_PII_MASTER_KEY; a tombstone drops the key), gives a user's data key to the producer,
creating (and durably writing) one when the user has none, and shreds a user's keys on erasure:
a tombstone per key, which compaction turns into no record at all (delete.retention.ms).
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from confluent_kafka import Consumer, Producer, TopicPartition

from core import pii
from core.errors import PlaylogError
from core.settings import Settings
from topics.kafka_io import consumer_config, end_offsets, producer_config

log = logging.getLogger(__name__)

KEYS_TOPIC = "pii.keys"


class _Producer(Protocol):
    def produce(self, topic: str, value: bytes | None = ..., key: str | bytes | None = ...) -> None: ...
    def flush(self, timeout: float = ...) -> int: ...


def read_keys(settings: Settings, timeout: float = 30.0) -> dict[tuple[str, str], bytes]:
    """``(user_id, kid) -> data key`` of every key the topic holds now (tombstoned keys are absent)."""
    kek = pii.derive_kek(settings.pii_master_key)
    topic = settings.topic_prefix + KEYS_TOPIC
    consumer = Consumer(consumer_config(settings, None))
    keys: dict[tuple[str, str], bytes] = {}
    try:
        ends = {p: hi for (_, p), (lo, hi) in end_offsets(consumer, [topic], timeout).items() if hi > lo}
        if not ends:
            return keys
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        pos = {p: -1 for p in ends}
        deadline = time.monotonic() + timeout
        while any(pos[p] + 1 < hi for p, hi in ends.items()):
            if time.monotonic() > deadline:
                raise PlaylogError(f"cannot read {topic} to its end within {timeout:.0f}s")
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            pos[msg.partition()] = msg.offset()
            user_id, _, kid = (msg.key() or b"").decode().partition("|")
            if msg.value() is None:
                keys.pop((user_id, kid), None)
                continue
            got = pii.unwrap_key(kek, msg.value())
            if got is None:
                log.warning("%s[%d]@%d: a key this master key did not wrap; ignored", topic, msg.partition(),
                            msg.offset())
                continue
            keys[(got[0], got[1])] = got[2]
    finally:
        consumer.close()
    return keys


class PiiKeyStore:
    """The keys of ``pii.keys`` for one process: read once (lazily), then kept up to date with what this
    process writes. ``refresh()`` reads the topic again (a reader that meets an unknown kid)."""

    def __init__(self, settings: Settings, producer: _Producer | None = None) -> None:
        self.settings = settings
        self.topic = settings.topic_prefix + KEYS_TOPIC
        self._kek = pii.derive_kek(settings.pii_master_key)
        self._producer = producer
        self._keys: dict[tuple[str, str], bytes] | None = None
        self._shredded: set[str] = set()

    def _loaded(self) -> dict[tuple[str, str], bytes]:
        if self._keys is None:
            self._keys = read_keys(self.settings)
        return self._keys

    def refresh(self) -> None:
        self._keys = read_keys(self.settings)

    def _out(self) -> _Producer:
        if self._producer is None:
            self._producer = Producer(producer_config(self.settings))
        return self._producer

    def lookup(self, user_id: str, kid: str) -> bytes | None:
        return self._loaded().get((user_id, kid))

    def kids(self, user_id: str) -> list[str]:
        return sorted(k for u, k in self._loaded() if u == user_id)

    def key_for(self, user_id: str) -> tuple[str, bytes]:
        """The user's data key (the first by kid), created and written durably (flushed) when there is none."""
        keys = self._loaded()
        kids = self.kids(user_id)
        if kids:
            return kids[0], keys[(user_id, kids[0])]
        kid, key = pii.new_data_key()
        out = self._out()
        out.produce(self.topic, value=pii.wrap_key(self._kek, user_id, kid, key), key=pii.record_key(user_id, kid))
        if out.flush(30.0):
            raise PlaylogError(f"cannot write a PII key to {self.topic}; is the broker up?")
        keys[(user_id, kid)] = key
        return kid, key

    def shred(self, user_id: str) -> list[str]:
        """Tombstone every key of the user (GDPR erasure); returns the kids shredded."""
        kids = self.kids(user_id)
        out = self._out()
        for kid in kids:
            out.produce(self.topic, value=None, key=pii.record_key(user_id, kid))
        if kids and out.flush(30.0):
            raise PlaylogError(f"cannot write PII key tombstones to {self.topic}; is the broker up?")
        for kid in kids:
            self._loaded().pop((user_id, kid), None)
        log.info("PII keys of %s shredded: %d", user_id, len(kids))
        return kids
