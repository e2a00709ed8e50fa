"""The one dead-letter record (spec/events.md, "Bad input"): every writer builds it here.

A dead letter is the original bytes as the value, keyed by the source topic, with headers carrying
the reason and the source position. The worker's Faust agents, the plays stage, the sink runner
(through ``topics.kafka_io.dead_letter``) and anything else that dead-letters calls
:func:`deadletter_record` and only sends what it returns, so readers of the ``deadletter`` topic
(tests, operators) see one shape whoever wrote it.
"""

from __future__ import annotations

from typing import Protocol

#: the dead-letter topic's name, without the prefix (topics/topic_catalog.json)
DEADLETTER_TOPIC = "deadletter"

Headers = list[tuple[str, bytes]]


class SourceRecord(Protocol):
    """What a dead letter needs of the refused record (``processors.batches.RawRecord``,
    ``topics.kafka_io.Record`` and Faust's message fields all have it)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def value(self) -> bytes | None: ...


def deadletter_headers(reason: str, source: SourceRecord | None = None) -> Headers:
    """``reason``, then ``source.topic``, ``source.partition`` and ``source.offset`` when known."""
    headers = [("reason", reason.encode())]
    if source is not None:
        headers += [
            ("source.topic", source.topic.encode()),
            ("source.partition", str(source.partition).encode()),
            ("source.offset", str(source.offset).encode()),
        ]
    return headers


def deadletter_record(record: SourceRecord, reason: str) -> tuple[bytes, bytes | None, Headers]:
    """``(key, value, headers)`` of the dead letter for ``record``: key = its (full) topic name,
    value = its original bytes (None when it had no value), headers = reason and source position."""
    return record.topic.encode(), record.value, deadletter_headers(reason, record)
