"""A producer that failed for good is replaced, not left refusing writes until someone restarts the API.

librdkafka reports some errors as fatal (an idempotent producer whose state the broker no longer
accepts, for one): that producer will never deliver again. The API's publisher used to say "restart
the API" on ``/healthz`` and answer 503 for ever. We expect: after a fatal error (delivered through the
producer's own ``error_cb``, as librdkafka does), ``health()`` names it, the publisher builds a new
producer within a few probe rounds, ``health()`` is clear again, and a write is acknowledged and is in
the topic, read back by a plain consumer.
"""

from __future__ import annotations

import asyncio

from confluent_kafka import KafkaError

from core.settings import Settings
from playback.publisher import KafkaPublisher
from schemas.codec import default_codec
from tests.support.playback_procs import read_topic, wait_until
from topics.admin import create_topics


def _pause(event_id: str, position: int) -> dict:
    return {"type": "player.paused", "event_id": event_id, "occurred_at": 1_780_000_000_000,
            "user_id": "u-renew", "device_id": "d1", "position_ms": position}


def test_a_fatal_producer_error_is_healed_and_writes_go_on(kafka_env: Settings) -> None:
    create_topics(kafka_env)
    publisher = KafkaPublisher(kafka_env)
    try:
        wait_until("the broker to answer the probe", lambda: publisher.health() is None, timeout=60)
        asyncio.run(publisher.publish([_pause("before", 1)]))

        publisher._on_error(KafkaError(KafkaError._FATAL, "injected fatal error", fatal=True))
        assert "failed for good" in (publisher.health() or "")
        wait_until("a new producer", lambda: publisher.renewals == 1 and publisher.health() is None, timeout=30,
                   on_timeout=lambda: str(publisher.health()))
        asyncio.run(publisher.publish([_pause("after", 2)]))  # raises PublishError unless acknowledged
    finally:
        publisher.close()

    codec = default_codec()
    got = {codec.decode(m.value())["event_id"] for m in read_topic(kafka_env.bootstrap_servers,
                                                                   kafka_env.topic_prefix + "player")}
    assert got == {"before", "after"}
