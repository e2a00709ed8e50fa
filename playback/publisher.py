"""How the playback API produces its events: to Kafka, awaiting the broker's acknowledgement, or to memory.

Acknowledged means durable. ``publish`` returns only once Kafka acknowledged every event (the
idempotent producer of :mod:`topics.producer`, ``acks=all``), and raises :class:`PublishError` (the
API answers 503) when it cannot be so:

- the broker is known to be unreachable (see below): at once, nothing is produced;
- the producer queue is full: at once;
- no acknowledgement within :data:`ACK_TIMEOUT_S`. The producer's own ``message.timeout.ms``
  (:data:`MESSAGE_TIMEOUT_MS`) is shorter, so the delivery report (success or "timed out") normally
  settles the wait first, and an event the API gave up on is not left queued to be written later.

Broker health. A probe thread asks the broker for metadata every :data:`PROBE_EVERY_S` (answer within
:data:`PROBE_TIMEOUT_S`); librdkafka's "all brokers down" error marks the broker unreachable at once.
:meth:`KafkaPublisher.health` is None when the last probe was answered, else the reason: ``/healthz``
says not ready with it, and writes get 503 without waiting, until a probe is answered again.

``publish_nowait`` (queue without waiting, report a finally undelivered event through
``on_failure``) gives up that guarantee; the API uses it only when configured to
(``PlaybackApi(ack_player_commands=False)``, load experiments).

:class:`KafkaPublisher` is built on :class:`topics.producer.EventProducer` (its idempotent producer
config, codec and topic routing, ``topics.topic_catalog``), adding what an asyncio server needs: one
delivery future per record, a poll thread that settles them, the health probe, and a full queue
reported at once instead of waited out. :class:`MemoryPublisher` keeps events in a list (tests, the
broker-less benchmark).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from topics.producer import EventProducer
from topics.topic_catalog import key_of, topic_of

log = logging.getLogger(__name__)

ACK_TIMEOUT_S = 8.0  # the longest a write waits for Kafka's acknowledgement before 503
MESSAGE_TIMEOUT_MS = 7_000  # the producer gives up on a record (delivery report "timed out") before that
PROBE_EVERY_S = 1.0
PROBE_TIMEOUT_S = 2.0


class PublishError(Exception):
    """An event could not be delivered to Kafka (the API answers 503)."""


class _ApiProducer(EventProducer):
    """The topics producer with a delivery callback per event, failing fast on a full queue."""

    def produce_event(self, event: dict, on_delivery: Callable[[Any, Any], None]) -> None:
        from confluent_kafka import KafkaException

        try:
            self._producer.produce(self.prefix + topic_of(event["type"]), self.codec.encode(event),
                                   key_of(event), on_delivery=on_delivery)
        except BufferError:
            raise PublishError("the producer queue is full") from None
        except KafkaException as exc:  # e.g. the producer failed for good and is being replaced
            raise PublishError(f"the producer refused the event: {exc}") from None

    def abandon(self) -> None:
        """Fail every queued and in-flight record now (their delivery reports say "purged")."""
        self._producer.purge()
        self._producer.poll(0)

    def poll(self, timeout: float) -> None:
        self._producer.poll(timeout)

    def probe(self, topic: str, timeout: float) -> None:
        """A metadata request answered by a broker within ``timeout``; KafkaException otherwise."""
        self._producer.list_topics(topic, timeout=timeout)

    def flush_quietly(self, timeout: float) -> None:
        """Wait up to ``timeout`` for outstanding deliveries (their callbacks report failures)."""
        self._producer.flush(timeout)


class KafkaPublisher:
    """Produce events with confluent-kafka and await each delivery report from asyncio."""

    def __init__(self, settings: Any, codec: Any = None):
        self._servers = settings.bootstrap_servers
        self._problem: str | None = f"no answer yet from the broker at {self._servers}"
        self._fatal: str | None = None
        self._settings = settings
        self._producer = self._new_producer(codec)
        self.renewals = 0
        self.codec = self._producer.codec
        self.prefix = self._producer.prefix
        self._probe_topic = self.prefix + topic_of("player.paused")
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._poll, name="api-producer", daemon=True),
                         threading.Thread(target=self._probe, name="api-broker-probe", daemon=True)]
        for t in self._threads:
            t.start()

    def _new_producer(self, codec: Any = None) -> _ApiProducer:
        return _ApiProducer(self._settings, codec, **{
            "linger.ms": 1, "message.timeout.ms": MESSAGE_TIMEOUT_MS, "error_cb": self._on_error})

    def _renew(self) -> None:
        """Replace a producer that failed for good (librdkafka's fatal errors, e.g. an idempotence
        state the broker no longer accepts) with a new one, instead of refusing writes until someone
        restarts the API. Nothing acknowledged is affected: records of the old producer that had no
        acknowledgement are failed (the writes that waited on them get 503 and may be retried)."""
        old, reason = self._producer, self._fatal
        self._producer = self._new_producer(old.codec)
        self.renewals += 1
        self._fatal = None
        try:
            old.abandon()
        except Exception:  # noqa: BLE001 - a failed producer may refuse even that; its waits time out (503)
            log.debug("the failed producer could not purge its records", exc_info=True)
        log.warning("replaced the producer that failed for good (%s); writes go on with a new one", reason)

    # -- broker health ---------------------------------------------------------------------------
    def health(self) -> str | None:
        """None while the broker answers; else why writes are refused (``/healthz`` shows it)."""
        return self._fatal or self._problem

    def _mark(self, problem: str | None) -> None:
        if problem != self._problem:
            if problem is None:
                log.info("broker at %s answers again: writes accepted", self._servers)
            else:
                log.warning("writes refused (503): %s", problem)
        self._problem = problem

    def _on_error(self, err: Any) -> None:
        from confluent_kafka import KafkaError

        if err.fatal():
            self._fatal = f"the producer failed for good ({err.str()}); it is being replaced"
            log.error("%s", self._fatal)
        elif err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._mark(f"broker unreachable at {self._servers}: {err.str()}")
        else:
            log.warning("producer: %s", err.str())

    def _probe(self) -> None:
        from confluent_kafka import KafkaException

        while not self._stop.is_set():
            try:
                if self._fatal is not None:
                    self._renew()
                self._producer.probe(self._probe_topic, PROBE_TIMEOUT_S)
            except KafkaException as exc:
                reason = exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else str(exc)
                self._mark(f"broker unreachable at {self._servers}: {reason}")
            except Exception as exc:  # noqa: BLE001 - the probe must go on: it is what ends a 503 period
                log.exception("broker probe failed")
                self._mark(f"broker probe failed: {exc}")
            else:
                self._mark(None)
            self._stop.wait(PROBE_EVERY_S)

    # -- producing -------------------------------------------------------------------------------
    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self._producer.poll(0.05)
            except Exception:  # noqa: BLE001 - a raising callback must not end delivery reports for good
                log.exception("delivery report handling failed")

    async def publish(self, events: list[dict]) -> None:
        """Produce ``events`` and wait for Kafka's acknowledgement of each; PublishError otherwise."""
        problem = self.health()
        if problem is not None:
            raise PublishError(problem)
        loop = asyncio.get_running_loop()
        futures = []
        for event in events:
            fut = loop.create_future()

            def done(err: Any, msg: Any, fut: asyncio.Future = fut) -> None:
                loop.call_soon_threadsafe(_settle, fut, err)

            self._producer.produce_event(event, done)
            futures.append(fut)
        try:
            await asyncio.wait_for(asyncio.gather(*futures), timeout=ACK_TIMEOUT_S)
        except TimeoutError:
            raise PublishError(f"the broker did not acknowledge within {ACK_TIMEOUT_S:.0f}s") from None

    def publish_nowait(self, events: list[dict], on_failure: Callable[[dict, str], None]) -> None:
        """Queue events without waiting for the broker (idempotent producer, retried until
        message.timeout.ms); ``on_failure(event, reason)`` runs (on the poll thread) if one is lost."""
        problem = self.health()
        if problem is not None:
            raise PublishError(problem)
        for event in events:
            def done(err: Any, msg: Any, event: dict = event) -> None:
                if err is not None:
                    on_failure(event, str(err))

            self._producer.produce_event(event, done)

    def close(self) -> None:
        self._producer.flush_quietly(10)
        self._stop.set()
        for t in self._threads:
            t.join(PROBE_TIMEOUT_S + 1)


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

    def health(self) -> str | None:
        return "publishing disabled" if self.fail else None

    def publish_nowait(self, events: list[dict], on_failure: Callable[[dict, str], None]) -> None:
        if self.fail:
            raise PublishError("publishing disabled")
        self.events.extend(events)
        if self.on_publish is not None:
            self.on_publish(events)

    def close(self) -> None:
        pass
