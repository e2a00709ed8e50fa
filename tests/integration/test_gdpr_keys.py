"""Crypto-shredding on the real broker: personal fields leave the producer sealed, erasure shreds the key."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from core import pii
from core.settings import Settings
from schemas.codec import default_codec
from topics.admin import create_topics
from topics.kafka_io import KafkaEventSink, consumer_config, end_offsets
from topics.pii_keys import PiiKeyStore, read_keys

NAME = "Zelda Quixote-Erasable"
DEVICE = "Zelda's purple phone"


def _raw(settings: Settings, name: str) -> list[tuple[bytes | None, bytes | None]]:
    topic = settings.topic_prefix + name
    c = Consumer(consumer_config(settings, None))
    try:
        ends = {p: hi for (_, p), (_, hi) in end_offsets(c, [topic]).items() if hi > 0}
        c.assign([TopicPartition(topic, p, 0) for p in ends])
        out, pos = [], {p: -1 for p in ends}
        while any(pos[p] + 1 < hi for p, hi in ends.items()):
            m = c.poll(1.0)
            if m is None or m.error():
                continue
            pos[m.partition()] = m.offset()
            out.append((m.key(), m.value()))
        return out
    finally:
        c.close()


def _events(user: str) -> list[dict]:
    return [
        {"type": "user.registered", "event_id": "r1", "occurred_at": 1_000, "user_id": user, "country": "DE",
         "product": "premium", "display_name": NAME},
        {"type": "device.registered", "event_id": "d1", "occurred_at": 1_001, "user_id": user, "device_id": "ph",
         "device_type": "phone", "name": DEVICE},
    ]


def test_fields_are_sealed_at_the_producer_and_erasure_shreds_the_key(kafka_env: Settings) -> None:
    create_topics(kafka_env)
    sink = KafkaEventSink(kafka_env)
    for e in _events("u-zelda") + _events("u-other"):
        sink.emit(e)
    sink.close()

    users = _raw(kafka_env, "users")
    assert len(users) == 4
    assert all(NAME.encode() not in v and DEVICE.encode() not in v for _, v in users if v)
    decoded = [default_codec().decode(v) for _, v in users]
    zelda = [e for e in decoded if e["user_id"] == "u-zelda"]
    sealed_name = next(e["display_name"] for e in zelda if e["type"] == "user.registered")
    sealed_device = next(e["name"] for e in zelda if e["type"] == "device.registered")
    assert pii.is_sealed(sealed_name) and pii.is_sealed(sealed_device)

    # a reader with the master key (a fresh store reads pii.keys) opens them
    reader = PiiKeyStore(kafka_env)
    assert pii.read_field(reader.lookup, "u-zelda", "display_name", sealed_name) == NAME
    assert pii.read_field(reader.lookup, "u-zelda", "name", sealed_device) == DEVICE
    assert len(reader.kids("u-zelda")) == 1 and len(reader.kids("u-other")) == 1  # one key per user, reused
    keys_raw = _raw(kafka_env, "pii.keys")
    assert all(v is not None and b"wrapped" in v for _, v in keys_raw)

    sink = KafkaEventSink(kafka_env)
    sink.emit({"type": "user.erasure_requested", "event_id": "x1", "occurred_at": 2_000, "user_id": "u-zelda"})
    sink.close()

    after = PiiKeyStore(kafka_env)
    assert after.kids("u-zelda") == [] and len(after.kids("u-other")) == 1
    tomb = [k for k, v in _raw(kafka_env, "pii.keys") if v is None]
    assert tomb == [f"u-zelda|{reader.kids('u-zelda')[0]}".encode()]
    assert pii.read_field(after.lookup, "u-zelda", "display_name", sealed_name) is None
    assert pii.read_field(after.lookup, "u-zelda", "name", sealed_device) is None
    # no key left in the topic opens it (every live key tried)
    for key in read_keys(kafka_env).values():
        assert pii.open_sealed(key, "u-zelda", "display_name", sealed_name) is None
    other = next(e["display_name"] for e in decoded if e["user_id"] == "u-other" and e["type"] == "user.registered")
    assert pii.read_field(after.lookup, "u-other", "display_name", other) == NAME
