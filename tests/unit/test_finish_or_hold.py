"""A batch's records are acked only after its work, and a record the work passed over (its partition
was revoked meanwhile) is never acked: the new owner processes it, and an ack could let a later commit
step over it. Checked on Faust's real Message and a consumer that records what it is told."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from faust.types.tuples import ConsumerMessage as Message

from worker.app import finish_or_hold


class _Consumer:
    def __init__(self) -> None:
        self.acked: list[tuple[int, int]] = []

    def ack(self, m: Message) -> None:
        m.acked = True
        self.acked.append((m.partition, m.offset))


def _events(*tps: tuple[int, int]) -> list:
    return [SimpleNamespace(message=Message("t", p, o, 0.0, 0, None, b"k", b"v", None)) for p, o in tps]


def test_records_are_acked_after_the_work_except_those_passed_over() -> None:
    consumer, events = _Consumer(), _events((0, 5), (2, 7), (0, 6), (3, 1))
    seen_during: list = []

    async def work() -> None:
        seen_during.append(list(consumer.acked))

    asyncio.run(finish_or_hold(consumer, events, work(), leave=lambda m: m.partition == 0))
    assert seen_during == [[]]  # nothing acked while the work runs
    assert consumer.acked == [(2, 7), (3, 1)]
    for e in events:  # then Faust's take_events acks the batch itself: no further ack reaches the consumer
        e.message.ack(consumer)
    assert consumer.acked == [(2, 7), (3, 1)]


def test_a_batch_cut_short_is_not_acked() -> None:
    consumer, events = _Consumer(), _events((1, 1), (1, 2))

    async def work() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(finish_or_hold(consumer, events, work()))
    for e in events:  # Faust's own ack at the generator's close does nothing either
        e.message.ack(consumer)
    assert consumer.acked == []
