"""Batches in flight: consume the next batch while the last one's records are being acknowledged,
and commit a batch's offsets only once its records and every older batch's are acknowledged.

The plays stage used to flush the producer (wait for every acknowledgement) and commit synchronously
after each batch: two round trips during which it did nothing, about a third of its time. With
:class:`InFlight` it keeps up to a few batches in flight; the guarantee is the same (a record's
offset is committed only after everything produced from it is durable), so after a crash the
uncommitted batches are read again and their facts, which are joins, re-sent harmlessly.

Pure bookkeeping, no Kafka: :meth:`InFlight.open` a batch with the offsets it would commit,
:meth:`Batch.expect` before producing each record and give :meth:`Batch.report` as its delivery
callback, :meth:`Batch.seal` when all are produced; :meth:`InFlight.take_done` returns the offsets
now safe to commit (the latest of each partition over the finished batches at the head of the queue).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Batch:
    offsets: dict[tuple[str, int], int]  # (topic, partition) -> next offset to read
    pending: int = 0
    sealed: bool = False
    failed: list[str] = field(default_factory=list)

    def expect(self, n: int = 1) -> None:
        self.pending += n

    def report(self, err: Any, msg: Any) -> None:
        """A delivery callback (confluent-kafka's ``on_delivery``)."""
        self.pending -= 1
        if err is not None:
            self.failed.append(str(err))

    def seal(self) -> None:
        self.sealed = True

    @property
    def done(self) -> bool:
        return self.sealed and self.pending == 0


class InFlight:
    """The batches not yet committed, oldest first."""

    def __init__(self) -> None:
        self._queue: deque[Batch] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def open(self, offsets: dict[tuple[str, int], int]) -> Batch:
        batch = Batch(dict(offsets))
        self._queue.append(batch)
        return batch

    def take_done(self) -> dict[tuple[str, int], int]:
        """Offsets safe to commit now: those of the finished batches at the head (a finished batch
        behind an unfinished one waits). ValueError if a finished batch had a failed delivery: its
        offsets must never be committed (the caller stops; the batch is read again)."""
        out: dict[tuple[str, int], int] = {}
        while self._queue and self._queue[0].done:
            batch = self._queue[0]
            if batch.failed:
                raise ValueError(f"{len(batch.failed)} record(s) failed to deliver, first: {batch.failed[0]}")
            self._queue.popleft()
            for tp, offset in batch.offsets.items():
                out[tp] = max(offset, out.get(tp, 0))
        return out

    def clear(self) -> None:
        """Forget every batch (after a rebalance took their partitions: the new owner reads them)."""
        self._queue.clear()
