"""The stall detector and the worker's metrics text, without a broker."""

from __future__ import annotations

from topics.lag import PartitionLag
from worker.progress import Sample, StallDetector, owned_lag, render


def test_lag_with_nothing_processed_for_the_window_is_a_stall() -> None:
    d = StallDetector(stall_seconds=30)
    assert not d.observe(0, lag=10, processed=100, recovering=False)
    assert not d.observe(20, lag=15, processed=100, recovering=False)
    assert d.observe(30, lag=20, processed=100, recovering=False)
    assert d.stalled


def test_progress_or_no_lag_or_recovery_is_not_a_stall() -> None:
    d = StallDetector(stall_seconds=30)
    d.observe(0, lag=10, processed=100, recovering=False)
    assert not d.observe(40, lag=10, processed=101, recovering=False)  # it processed something
    assert not d.observe(80, lag=0, processed=101, recovering=False)  # nothing waits: idle, not stalled
    assert not d.observe(120, lag=5, processed=101, recovering=True)  # recovering: the window restarts
    assert not d.observe(140, lag=5, processed=101, recovering=False)
    assert d.observe(150, lag=6, processed=101, recovering=False)


def test_shrinking_lag_restarts_the_window() -> None:
    d = StallDetector(stall_seconds=30)
    d.observe(0, lag=10, processed=5, recovering=False)
    assert not d.observe(29, lag=4, processed=5, recovering=False)  # committed earlier work: it drains
    assert not d.observe(50, lag=4, processed=5, recovering=False)
    assert d.observe(59, lag=4, processed=5, recovering=False)


def test_metrics_text_has_lag_in_records_and_seconds_per_partition() -> None:
    s = Sample(at=1_000.0, owned=frozenset({("p.rights", 0)}), processed={"rights": 7, "catalog": 3})
    s.partitions = {
        ("p.worker", "p.rights", 0): PartitionLag(committed=5, end=9, lag=4, oldest_unprocessed_ms=990_000),
        ("p.worker", "p.rights", 1): PartitionLag(committed=2, end=2, lag=0, oldest_unprocessed_ms=None),
    }
    assert owned_lag(s, "p.worker") == 4
    text = render(s, "w1", "p.").decode()
    assert ('playlog_worker_lag_records{group="p.worker",owned="true",partition="0",topic="rights",worker="w1"} 4.0'
            in text)
    assert ('playlog_worker_lag_seconds{group="p.worker",owned="true",partition="0",topic="rights",worker="w1"} 10.0'
            in text)
    assert ('playlog_worker_lag_seconds{group="p.worker",owned="false",partition="1",topic="rights",worker="w1"} 0.0'
            in text)
    assert 'playlog_worker_records_processed_total{topic="rights",worker="w1"} 7.0' in text
    assert 'playlog_worker_stalled{worker="w1"} 0.0' in text
