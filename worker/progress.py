"""Progress you can see: a worker's Prometheus metrics and its liveness verdict.

Every few seconds the worker samples, off the event loop, the committed offsets of its consumer
groups against the end offsets (``topics.lag.partition_lag``): per partition the lag in records
and in seconds (now minus the Kafka timestamp of the oldest record not yet committed), plus what
its agents processed per source topic and its recovery state. ``/metrics`` renders the last
sample in Prometheus text; ``/livez`` answers 503 when :class:`StallDetector` says the worker is
stalled: records wait on the partitions it owns, it processed nothing for ``stall_seconds`` and
its lag did not shrink meanwhile (time in recovery or rebalancing does not count). ``playlog up``
restarts a worker whose ``/livez`` fails.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from topics.lag import PartitionLag


class StallDetector:
    """Pure: fed (time, lag on owned partitions, records processed so far, in recovery?)."""

    def __init__(self, stall_seconds: float) -> None:
        self.stall_seconds = stall_seconds
        self.since: float | None = None  # when processing last moved (or the window restarted)
        self.lag_at_since = 0
        self.processed_at_since = -1
        self.stalled = False

    def observe(self, now: float, lag: int, processed: int, recovering: bool) -> bool:
        if recovering or lag == 0 or processed != self.processed_at_since or self.since is None:
            self.since, self.lag_at_since, self.processed_at_since = now, lag, processed
            self.stalled = False
            return False
        if lag < self.lag_at_since:  # draining (e.g. by a commit of work done earlier): progress
            self.since, self.lag_at_since = now, lag
            self.stalled = False
            return False
        self.stalled = now - self.since >= self.stall_seconds
        return self.stalled

    def idle_seconds(self, now: float) -> float:
        return 0.0 if self.since is None else now - self.since


@dataclass
class Sample:
    at: float = 0.0  # wall clock (s) of the sample
    partitions: dict[tuple[str, str, int], PartitionLag] = field(default_factory=dict)  # (group, topic, p)
    owned: frozenset[tuple[str, int]] = frozenset()
    processed: dict[str, int] = field(default_factory=dict)  # source topic -> records
    recovering: bool = False
    view_ready: bool = False
    stalled: bool = False
    rewinds: dict[str, int] = field(default_factory=dict)  # reason -> count (worker/faust_fixes.py)
    error: str | None = None


def owned_lag(sample: Sample, group: str) -> int:
    return sum(pl.lag for (g, t, p), pl in sample.partitions.items() if g == group and (t, p) in sample.owned)


def render(sample: Sample, worker: str, prefix: str) -> bytes:
    """The sample as Prometheus text (a fresh registry per scrape)."""

    class _Collector:
        def collect(self):  # noqa: ANN202 - prometheus_client's protocol
            lag = GaugeMetricFamily("playlog_worker_lag_records", "Records not yet committed, per partition",
                                    labels=["worker", "group", "topic", "partition", "owned"])
            secs = GaugeMetricFamily("playlog_worker_lag_seconds",
                                     "Now minus the timestamp of the oldest record not yet committed",
                                     labels=["worker", "group", "topic", "partition", "owned"])
            for (group, topic, part), pl in sorted(sample.partitions.items()):
                labels = [worker, group, topic[len(prefix):], str(part),
                          "true" if (topic, part) in sample.owned else "false"]
                lag.add_metric(labels, pl.lag)
                behind = 0.0 if pl.lag == 0 or pl.oldest_unprocessed_ms is None else max(
                    0.0, sample.at - pl.oldest_unprocessed_ms / 1000)
                secs.add_metric(labels, behind)
            yield lag
            yield secs
            done = CounterMetricFamily("playlog_worker_records_processed", "Records processed by this worker's agents",
                                       labels=["worker", "topic"])
            for topic, n in sorted(sample.processed.items()):
                done.add_metric([worker, topic], n)
            yield done
            rewinds = CounterMetricFamily("playlog_worker_fetch_rewinds",
                                          "Fetched records Faust had dropped, fetched again (worker/faust_fixes.py)",
                                          labels=["worker", "reason"])
            for reason, n in sorted(sample.rewinds.items()):
                rewinds.add_metric([worker, reason], n)
            yield rewinds
            for name, doc, value in (
                ("playlog_worker_recovering", "1 while the worker recovers its tables or rebalances", sample.recovering),
                ("playlog_worker_royalty_view_ready", "1 when this worker holds the rebuilt royalty view",
                 sample.view_ready),
                ("playlog_worker_stalled", "1 when lag waits on owned partitions and nothing is processed",
                 sample.stalled),
                ("playlog_worker_sample_timestamp_seconds", "When the lag was last sampled", sample.at),
            ):
                g = GaugeMetricFamily(name, doc, labels=["worker"])
                g.add_metric([worker], float(value))
                yield g

    registry = CollectorRegistry()
    registry.register(_Collector())
    return generate_latest(registry)


def now() -> float:
    return time.time()
