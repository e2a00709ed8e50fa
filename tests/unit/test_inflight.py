"""Batches in flight commit an offset only when everything produced from it and before it is acknowledged."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.inflight import InFlight

TP = ("listening", 0)


def test_a_finished_batch_waits_for_an_older_unfinished_one() -> None:
    q = InFlight()
    a, b = q.open({TP: 10}), q.open({TP: 20})
    a.expect(2)
    b.expect(1)
    a.seal()
    b.seal()
    b.report(None, None)
    assert q.take_done() == {}  # b is done, a is not: nothing may be committed
    a.report(None, None)
    assert q.take_done() == {}
    a.report(None, None)
    assert q.take_done() == {TP: 20} and len(q) == 0


def test_an_unsealed_batch_is_not_done_even_with_nothing_pending() -> None:
    q = InFlight()
    a = q.open({TP: 5})
    assert q.take_done() == {}
    a.seal()
    assert q.take_done() == {TP: 5}


def test_a_failed_delivery_is_never_committed() -> None:
    q = InFlight()
    a = q.open({TP: 5})
    a.expect()
    a.seal()
    a.report("Broker: Message too large", None)
    with pytest.raises(ValueError, match="Message too large"):
        q.take_done()


@settings(max_examples=300)
@given(st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=8),  # records per batch
       st.randoms(use_true_random=False))
def test_committed_offsets_never_pass_an_unacknowledged_record(sizes: list[int], rnd) -> None:
    q = InFlight()
    batches = []
    records = []  # (batch index, acked?)
    for i, n in enumerate(sizes):
        b = q.open({TP: (i + 1) * 100, ("other", i % 2): (i + 1) * 100 + 1})
        b.expect(n)
        b.seal()
        batches.append(b)
        records += [i] * n
    rnd.shuffle(records)
    acked = [0] * len(sizes)
    committed: dict = {}
    for i in records:
        batches[i].report(None, None)
        acked[i] += 1
        committed.update(q.take_done())
        # the oldest batch with an unacknowledged record bounds what may be committed
        first_open = next((j for j, n in enumerate(sizes) if acked[j] < n), len(sizes))
        expected = {}
        for j in range(first_open):
            for tp, off in {TP: (j + 1) * 100, ("other", j % 2): (j + 1) * 100 + 1}.items():
                expected[tp] = max(off, expected.get(tp, 0))
        assert committed == expected
    committed.update(q.take_done())
    assert len(q) == 0 and committed[TP] == len(sizes) * 100
