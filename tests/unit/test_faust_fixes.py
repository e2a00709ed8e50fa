"""worker/faust_fixes.py #3 against faust-streaming's real Consumer (no broker: the consumer's
offset bookkeeping and fetch loop run on fakes of aiokafka's side).

Without the patch, Faust's own ``_new_offset`` commits over records that were never acked: with
the committed offset at 10 and offsets 11 and 12 acked it commits 13 (offset 10 lost), and with
the committed offset at 0 (kept as None) and 5, 6 acked it commits 7 (0..4 lost). The expected
offsets below are Kafka's rule (commit = the next offset to process, only past processed records),
not the code's.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import faust
import pytest
from faust.types import TP

from worker import faust_fixes

TOPIC = "ff.rights"
OTHER = "ff.some-compacted-view"


@pytest.fixture
def consumer():
    faust_fixes.install()
    faust_fixes.set_contiguous_topics([TOPIC])
    app = faust.App("ff-test", broker="kafka://127.0.0.1:1")
    return app.consumer


def _acked(c, tp: TP, offsets: list[int], committed: int | None) -> None:
    c._acked[tp] = list(offsets)
    c._acked_index[tp] = set(offsets)
    c._committed_offset[tp] = committed or None  # Faust keeps 0 as None
    if committed is not None:
        faust_fixes._base(c)[tp] = committed


def test_a_hole_at_the_committed_offset_holds_the_commit(consumer) -> None:
    tp = TP(TOPIC, 0)
    _acked(consumer, tp, [11, 12], committed=10)
    assert consumer._new_offset(tp) is None  # offset 10 is not processed: nothing to commit
    consumer._acked[tp].append(10)
    consumer._acked_index[tp].add(10)
    assert consumer._new_offset(tp) == 13


def test_a_committed_offset_of_zero_is_a_floor_too(consumer) -> None:
    tp = TP(TOPIC, 1)
    _acked(consumer, tp, [5, 6], committed=0)
    assert consumer._new_offset(tp) is None
    _acked(consumer, tp, [0, 1, 2, 4], committed=0)
    assert consumer._new_offset(tp) == 3  # up to the first hole, not past it
    assert consumer._acked[tp] == [4]


def test_offsets_below_the_committed_one_are_dropped(consumer) -> None:
    tp = TP(TOPIC, 2)
    _acked(consumer, tp, [3, 4, 8, 9], committed=8)  # 3, 4: acked again after a rewind, already committed
    assert consumer._new_offset(tp) == 10
    assert consumer._acked[tp] == [] and not consumer._acked_index[tp]


def test_other_topics_keep_fausts_rule(consumer) -> None:
    tp = TP(OTHER, 0)  # compacted topics have real holes: Faust's gap logic stays theirs
    consumer._acked[tp] = [11, 12]
    consumer._acked_index[tp] = {11, 12}
    consumer._committed_offset[tp] = 10
    assert consumer._new_offset(tp) == 13


def _record(offset: int) -> SimpleNamespace:
    return SimpleNamespace(offset=offset)


def test_getmany_rewinds_what_it_dropped(consumer, monkeypatch) -> None:
    """The flow stops half-way through a fetched batch (a rebalance starts): the records not
    delivered are fetched again, from the first of them."""
    tp = TP(TOPIC, 0)
    recs = {tp: [_record(o) for o in range(20, 26)]}
    seeks: list[tuple[TP, int]] = []

    async def wait_next(timeout: float):
        return recs, {tp}

    async def seek(partition, offset):
        seeks.append((partition, offset))

    monkeypatch.setattr(consumer, "_wait_next_records", wait_next)
    monkeypatch.setattr(consumer, "seek", seek)
    monkeypatch.setattr(consumer, "assignment", lambda: {tp})
    monkeypatch.setattr(consumer, "highwater", lambda tp: 100)
    monkeypatch.setattr(consumer, "_to_message", lambda tp, r: r)
    consumer.flow_active = True
    faust_fixes._next(consumer)[tp] = 20

    async def take() -> list[int]:
        got = []
        async for _, m in consumer.getmany(timeout=1.0):
            got.append(m.offset)
            if m.offset == 22:
                consumer.flow_active = False  # stop_flow(): Faust breaks out and drops the rest
        return got

    assert consumer.loop.run_until_complete(take()) == [20, 21, 22]
    assert seeks == [(tp, 20)]  # rewound to the next expected offset (23..25 dropped; 20..22 unacked)


def test_the_fetch_loop_rewinds_a_hole_instead_of_delivering_past_it(consumer, monkeypatch) -> None:
    """Records 3 and 4 of a partition never reached the streams (dropped after a fetch): when 5
    arrives the loop fetches from 3 again instead of delivering 5 (Faust recorded 3..4 as a gap and
    committed over them)."""
    tp = TP(TOPIC, 0)
    batches = [[0, 1, 2, 5, 6], [3, 4, 5, 6]]
    delivered: list[int] = []
    seeks: list[int] = []

    async def run() -> None:
        fetcher = SimpleNamespace(_stopped=asyncio.Event())

        async def getmany(timeout: float):
            if not batches:
                fetcher._stopped.set()
                return
            for o in batches.pop(0):
                yield tp, SimpleNamespace(offset=o, topic=TOPIC)

        async def callback(message):
            delivered.append(message.offset)

        async def seek(partition, offset):
            seeks.append(offset)
            faust_fixes._next(consumer)[partition] = offset

        monkeypatch.setattr(consumer, "getmany", getmany)
        monkeypatch.setattr(consumer, "callback", callback)
        monkeypatch.setattr(consumer, "seek", seek)
        monkeypatch.setattr(consumer, "assignment", lambda: {tp})
        monkeypatch.setattr(consumer, "_commit_every", None)
        faust_fixes._next(consumer)[tp] = 0
        await consumer._drain_messages(fetcher)

    consumer.loop.run_until_complete(run())  # the loop Faust's services are bound to
    assert delivered == [0, 1, 2, 3, 4, 5, 6]
    assert seeks == [3]
    assert faust_fixes.REWINDS["hole"] >= 1


def test_a_commit_that_did_not_happen_keeps_its_acks(consumer, monkeypatch) -> None:
    """aiokafka answers "already rebalanced" with False: Faust had taken the acks off their list and
    recorded the offset as committed anyway, so the partition was never committed again."""
    tp = TP(TOPIC, 3)
    _acked(consumer, tp, [54, 55, 56], committed=54)
    answers = [False, True]
    sent: list[dict] = []

    async def commit(offsets):
        sent.append(dict(offsets))
        return answers.pop(0)

    async def flush():
        return None

    monkeypatch.setattr(consumer, "_commit", commit)
    monkeypatch.setattr(consumer, "assignment", lambda: {tp})
    monkeypatch.setattr(consumer.app.producer, "flush", flush)
    run = consumer.loop.run_until_complete
    assert run(consumer._commit_tps([tp], start_new_transaction=False)) is False
    assert consumer._committed_offset[tp] == 54 and sorted(consumer._acked[tp]) == [54, 55, 56]
    assert run(consumer._commit_tps([tp], start_new_transaction=False)) is True
    assert sent == [{tp: 57}, {tp: 57}] and consumer._committed_offset[tp] == 57


def test_table_recovery_never_seeks_before_the_beginning(consumer) -> None:
    """An earliest offset the broker did not give (-1) made Faust seek to -2 and crash the worker."""
    from faust.tables.recovery import Recovery

    seeks: list[dict] = []

    class Fake:
        async def seek_wait(self, offsets):
            seeks.append(dict(offsets))

    a, b, c, d = (TP("ff-changelog", i) for i in range(4))
    run = consumer.loop.run_until_complete
    run(Recovery._seek_offsets(None, Fake(), {a, b, c, d}, {a: -2, b: -1, c: 7, d: None}, "active"))
    assert seeks == [{a: 0, b: 0, c: 7, d: 0}]


def test_a_partition_stuck_behind_an_unacked_committed_offset_is_fetched_again(consumer, monkeypatch) -> None:
    tp, fine = TP(TOPIC, 0), TP(TOPIC, 1)
    seeks: list[tuple[TP, int]] = []

    async def seek(partition, offset):
        seeks.append((partition, offset))
        faust_fixes._next(consumer)[partition] = offset

    monkeypatch.setattr(consumer, "seek", seek)
    monkeypatch.setattr(consumer, "assignment", lambda: {tp, fine})
    _acked(consumer, tp, [], committed=7)
    _acked(consumer, fine, [20], committed=20)  # its committed record is acked: just not committed yet
    faust_fixes._next(consumer)[tp] = 12  # 7..11 delivered, 7 never acked
    faust_fixes._next(consumer)[fine] = 21
    run = consumer.loop.run_until_complete
    assert run(faust_fixes.rewind_stuck(consumer, 100.0)) == []
    assert run(faust_fixes.rewind_stuck(consumer, 110.0)) == []  # not long enough
    assert run(faust_fixes.rewind_stuck(consumer, 116.0)) == [tp]
    assert seeks == [(tp, 7)]
    assert run(faust_fixes.rewind_stuck(consumer, 200.0)) == []  # rewound: nothing past the commit now
