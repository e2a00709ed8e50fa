"""How the playback API produces its events: to Kafka, awaiting the broker's acknowledgement, or to memory.

The API answers a write only once Kafka acknowledged its event (``publish``), except player commands
when it is configured not to wait (``publish_nowait``: queued on the idempotent producer, retried until
``message.timeout.ms``; a finally undelivered one is reported through ``on_failure``). A full producer
queue or a broker that does not acknowledge in time raises :class:`PublishError` (the API answers 503).

:class:`KafkaPublisher` is built on :class:`topics.producer.EventProducer` (its idempotent producer
config, codec and topic routing, ``topics.topic_catalog``), adding what an asyncio server needs: one
delivery future per record, a poll thread that settles them, and a full queue reported at once instead
of waited out. :class:`MemoryPublisher` keeps events in a list (tests, the broker-less benchmark).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from topics.producer import EventProducer
from topics.topic_catalog import key_of, topic_of


class PublishError(Exception):
    """An event could not be delivered to Kafka (the API answers 503)."""


class _ApiProducer(EventProducer):
    """The topics producer with a delivery callback per event, failing fast on a full queue."""

    def produce_event(self, event: dict, on_delivery: Callable[[Any, Any], None]) -> None:
        try:
            self._producer.produce(self.prefix + topic_of(event["type"]), self.codec.encode(event),
                                   key_of(event), on_delivery=on_delivery)
        except BufferError:
            raise PublishError("the producer queue is full") from None

    def poll(self, timeout: float) -> None:
        self._producer.poll(timeout)

    def flush_quietly(self, timeout: float) -> None:
        """Wait up to ``timeout`` for outstanding deliveries (their callbacks report failures)."""
        self._producer.flush(timeout)


class KafkaPublisher:
    """Produce events with confluent-kafka and await each delivery report from asyncio."""

    def __init__(self, settings: Any, codec: Any = None):
        self._producer = _ApiProducer(settings, codec, **{"linger.ms": 1, "message.timeout.ms": 15_000})
        self.codec = self._producer.codec
        self.prefix = self._producer.prefix
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="api-producer", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    async def publish(self, events: list[dict]) -> None:
        loop = asyncio.get_running_loop()
        futures = []
        for event in events:
            fut = loop.create_future()

            def done(err: Any, msg: Any, fut: asyncio.Future = fut) -> None:
                loop.call_soon_threadsafe(_settle, fut, err)

            self._producer.produce_event(event, done)
            futures.append(fut)
        try:
            await asyncio.wait_for(asyncio.gather(*futures), timeout=20)
        except TimeoutError:
            raise PublishError("the broker did not acknowledge in time") from None

    def publish_nowait(self, events: list[dict], on_failure: Callable[[dict, str], None]) -> None:
        """Queue events without waiting for the broker (idempotent producer, retried until
        message.timeout.ms); ``on_failure(event, reason)`` runs (on the poll thread) if one is lost."""
        for event in events:
            def done(err: Any, msg: Any, event: dict = event) -> None:
                if err is not None:
                    on_failure(event, str(err))

            self._producer.produce_event(event, done)

    def close(self) -> None:
        self._producer.flush_quietly(10)
        self._stop.set()
        self._thread.join(2)


def _settle(fut: asyncio.Future, err: Any) -> None:
    if fut.done():
        return
    if err is None:
        fut.set_result(None)
    else:
        fut.set_exception(PublishError(str(err)))


@dataclass
class MemoryPublisher:
    """A publisher that keeps events in a list (tests; ``on_publish`` may feed a fake worker)."""

    events: list[dict] = field(default_factory=list)
    on_publish: Callable[[list[dict]], None] | None = None
    fail: bool = False

    async def publish(self, events: list[dict]) -> None:
        if self.fail:
            raise PublishError("publishing disabled")
        self.events.extend(events)
        if self.on_publish is not None:
            self.on_publish(events)

    def publish_nowait(self, events: list[dict], on_failure: Callable[[dict, str], None]) -> None:
        if self.fail:
            raise PublishError("publishing disabled")
        self.events.extend(events)
        if self.on_publish is not None:
            self.on_publish(events)

    def close(self) -> None:
        pass
