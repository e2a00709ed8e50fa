"""The sink protocol shared by the archive, the warehouse and ClickHouse.

A sink takes batches of decoded records with ``write(batch)`` and makes them durable with
``flush()``. The runner commits Kafka offsets only after ``flush()`` returned (quix-streams'
checkpoint order: flush sinks, then commit), so a crash between the two re-delivers the batch:
every sink must therefore be idempotent on (topic, partition, offset).
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
