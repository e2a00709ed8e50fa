"""The sink protocol shared by the archive, the warehouse and ClickHouse.

A sink takes batches of decoded records with ``write(batch)`` and makes them durable with
``flush()``. The runner commits Kafka offsets only after ``flush()`` returned (quix-streams'
checkpoint order: flush sinks, then commit), so a crash between the two re-delivers the batch:
every sink must therefore be idempotent on (topic, partition, offset).

Bad input never stops a sink (spec/events.md "Bad input"). Beyond the protocol, a sink may offer
(the archive, the warehouse and ClickHouse do; sinks/runner.py uses them when present):
- ``reject(batch) -> [(index, why)]``: the records it cannot write (a value its column type cannot
  hold), found without writing anything; the runner dead-letters them and writes the rest;
- ``data_errors`` (exception types) and ``discard()``: a flush that raises one of those was
  refused by the store because of a value; the runner discards the pending batch and writes it
  again in halves to find and dead-letter the refused record(s).
"""

from __future__ import annotations

from typing import Protocol

# (topic, partition, offset, key, event) with event the codec's in-memory dict
Record = tuple[str, int, int, "str | None", dict]


class Sink(Protocol):
    name: str

    def write(self, batch: list[Record]) -> None:
        """Accept a batch (may buffer); must not lose it before the next flush() returns."""

    def flush(self) -> None:
        """Make everything written so far durable; raise if that is impossible."""

    def close(self) -> None:
        """Release resources (does not imply flush)."""
