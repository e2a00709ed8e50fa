"""The one decode-and-validate step every reader uses (spec/events.md, "Bad input").

Live agents and the plays stage (``processors.batches.decode_batch``), the sink runner
(``sinks/runner.py``) and every replay source (``replay/sources.py``: Kafka, the Parquet archive,
JSON Lines) turn their input into in-memory events through these functions, so a record is refused
for the same reason, worded the same, wherever it is read: the live path dead-letters it with that
reason and the replay CLI lists it with that reason.

Each function returns the event or raises :class:`schemas.codec.EventError`, whose ``reason`` is
the one-line explanation.
"""

from __future__ import annotations

from typing import Any

import orjson

from schemas.codec import Codec, EventError
from schemas.invariants import invalid_reason

__all__ = ["EventError", "check_event", "decode_json", "decode_record", "parse_json_line"]


def check_event(event: dict) -> dict:
    """A type-correct in-memory event (e.g. rebuilt from archive columns) if it holds every
    invariant; EventError with the reason otherwise."""
    reason = invalid_reason(event)
    if reason:
        raise EventError(reason)
    return event


def decode_record(codec: Codec, value: bytes | None) -> dict:
    """The event in a Kafka record's value (Confluent wire format), checked against the invariants."""
    if value is None:
        raise EventError("record has no value")
    return check_event(codec.decode(value))


def parse_json_line(line: bytes | str) -> Any:
    """The JSON value of one line of a JSON Lines file; EventError when it is not valid JSON."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"not valid JSON: {exc}") from None


def decode_json(codec: Codec, obj: Any) -> dict:
    """The event of a JSON object of the interchange form: types, fields, then the invariants, with
    the same wording as :func:`check_event` (``Codec.from_json`` applies ``invalid_reason``)."""
    return codec.from_json(obj)
