"""The one decode-and-validate step every reader uses (spec/events.md, "Bad input").

Live agents and the plays stage (``processors.batches.decode_batch``), the sink runner
(``sinks/runner.py``) and every replay source (``replay/sources.py``: Kafka, the Parquet archive,
JSON Lines) turn their input into in-memory events through these functions, so a record is refused
for the same reason, worded the same, wherever it is read: the live path dead-letters it with that
reason and the replay CLI lists it with that reason.

The checks, in this order (the first that fails gives the reason):
1. the bytes or the JSON decode, with every value of its Avro type and in range
   (``Codec.decode`` / ``Codec.from_json`` / ``Codec.check_values``, schemas/codec.py);
2. where the record's topic is known, its event type is one that topic carries (``topic`` is the
   topic's catalog name, ``allowed`` its event types: the caller takes both from the topic catalog,
   ``topics.topic_catalog.topic_rule``, a layer above this one);
3. the event holds every invariant (schemas/invariants.py).

Each function returns the event or raises :class:`schemas.codec.EventError`, whose ``reason`` is
the one-line explanation.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson

from schemas.codec import Codec, EventError, default_codec
from schemas.invariants import invalid_reason

__all__ = ["EventError", "check_event", "check_topic", "decode_json", "decode_record", "parse_json_line"]


def check_topic(event: dict, topic: str | None = None, allowed: Collection[str] | None = None) -> dict:
    """The event if it may be on ``topic`` (its type is in ``allowed``); EventError otherwise.
    Nothing is checked when the topic or its event types are not known (None)."""
    if topic is not None and allowed is not None and event["type"] not in allowed:
        carries = ", ".join(sorted(allowed)) or "no events"
        raise EventError(f"{event['type']}: event type does not belong on topic {topic!r} (it carries {carries})")
    return event


def _invariants(event: dict) -> dict:
    reason = invalid_reason(event)
    if reason:
        raise EventError(reason)
    return event


def check_event(
    event: dict, topic: str | None = None, allowed: Collection[str] | None = None, codec: Codec | None = None
) -> dict:
    """An in-memory event (e.g. rebuilt from archive columns) if its values are in range, it may be
    on ``topic`` and it holds every invariant; EventError with the reason otherwise."""
    (codec or default_codec()).check_values(event)
    check_topic(event, topic, allowed)
    return _invariants(event)


def decode_record(
    codec: Codec, value: bytes | None, topic: str | None = None, allowed: Collection[str] | None = None
) -> dict:
    """The event in a Kafka record's value (Confluent wire format), checked against its topic
    (when ``topic`` and ``allowed`` are given) and the invariants."""
    if value is None:
        raise EventError("record has no value")
    return _invariants(check_topic(codec.decode(value), topic, allowed))


def parse_json_line(line: bytes | str) -> Any:
    """The JSON value of one line of a JSON Lines file; EventError when it is not valid JSON."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"not valid JSON: {exc}") from None


def decode_json(codec: Codec, obj: Any) -> dict:
    """The event of a JSON object of the interchange form: types, fields and ranges, then the
    invariants, with the same wording as :func:`check_event` (``Codec.from_json`` applies
    ``check_values`` and ``invalid_reason``). The JSON form carries no topic."""
    return codec.from_json(obj)
