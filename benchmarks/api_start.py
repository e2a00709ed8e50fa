"""``playlog bench api-start``: an API replica's start-up time against the length of the listening history.

For each history size N (each on its own private broker): the catalog and users views are published,
N listening events produced and folded by the taste stage (worker/taste_stage.py, in this process);
then a fresh API replica is started and timed until it is ready (caught up with every view topic it
follows, the search index committed). The baseline, in the same run: what an API process did before
the taste view existed (read the listening topic from the beginning, decode every event and fold it
with the same per-user fold). The figure that matters is the replica's start-up across N: it reads one
document per user and per track, so it stays flat while the baseline grows with N.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson

log = logging.getLogger(__name__)


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _publish_views(settings: Any, events: list[dict]) -> None:
    from processors import views
    from topics.kafka_io import EventProducer

    p = EventProducer(settings)
    for spec in views.VIEWS:
        if spec.name not in ("catalog", "rights", "users"):
            continue
        published, _ = views.apply_batch(spec, {}, [(None, e) for e in events])
        for key, (_, doc) in published.items():
            p.produce_raw(f"{settings.topic_prefix}view.{spec.name}", orjson.dumps(doc), key=key)
    p.flush()


def _compact_soon(settings: Any, topic: str) -> None:
    """Let the broker's log cleaner compact ``topic`` within seconds (its catalog setting rolls segments
    every 10 minutes, longer than a benchmark)."""
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    entries = [ConfigEntry("segment.ms", "2000", incremental_operation=AlterConfigOpType.SET),
               ConfigEntry("min.cleanable.dirty.ratio", "0.01", incremental_operation=AlterConfigOpType.SET)]
    for fut in admin.incremental_alter_configs([ConfigResource("topic", topic, incremental_configs=entries)]).values():
        fut.result(30)


def _count(settings: Any, topic: str) -> int:
    from topics.kafka_io import iter_batches

    return sum(len(b) for b in iter_batches(settings, [topic], batch_size=10_000))


def _start_replica(settings: Any) -> tuple[float, int, int, float]:
    from playback.replica import Replica

    rss0 = _rss()
    replica = Replica(search=True)
    t0 = time.perf_counter()
    replica.start(settings)
    if not replica.wait_ready(1800):
        raise RuntimeError(f"the replica did not get ready: {replica.last_error}")
    start_s = time.perf_counter() - t0
    applied, profiles = replica.applied, len(replica.profiles)
    replica.stop()
    return start_s, applied, profiles, (_rss() - rss0) / 1e6


def one(settings: Any, events: int, users: int, tracks: int) -> dict:
    from benchmarks.loadgen import catalog_events, listening_events
    from processors import taste_view
    from schemas.codec import default_codec
    from topics.admin import create_topics
    from topics.kafka_io import EventProducer, iter_batches
    from topics.lag import group_lag
    from worker import taste_stage

    codec = default_codec()
    create_topics(settings)
    view_topic = settings.topic_prefix + "view.taste"
    _compact_soon(settings, view_topic)
    start_ms = 1_779_000_000_000
    cat = catalog_events(tracks, start_ms - 86_400_000)
    registered = [{"type": "user.registered", "event_id": f"reg-{u}", "occurred_at": start_ms - 1000,
                   "user_id": f"bu{u:06d}", "country": "DE", "product": "premium", "display_name": None}
                  for u in range(users)]
    _publish_views(settings, cat + registered)
    p = EventProducer(settings)
    t0 = time.perf_counter()
    for ev in listening_events(events, n_users=users, n_tracks=tracks, start_ms=start_ms):
        p.produce_raw(settings.topic_prefix + "listening", codec.encode(ev), key=ev["user_id"])
    p.flush()
    produce_s = time.perf_counter() - t0

    stop = threading.Event()
    stage = threading.Thread(target=taste_stage.run, args=(settings, stop), daemon=True)
    t0 = time.perf_counter()
    stage.start()
    group, listening = f"{settings.topic_prefix}taste", [settings.topic_prefix + "listening"]
    while any(group_lag(settings, group, listening).values()):
        time.sleep(1.0)
    stage_s = time.perf_counter() - t0
    stop.set()
    stage.join(60)

    # right after the fold, before the log cleaner ran: every document version of the backlog is there
    start_s, applied, profiles, replica_mb = _start_replica(settings)
    # then compacted (in production: within the topic's segment.ms, 10 minutes): one document per user
    # plus the active segment's
    time.sleep(3)
    p.produce_raw(view_topic, None, key="\0roll")  # a record after segment.ms rolls the active segment
    p.flush()
    t0 = time.perf_counter()
    docs = _count(settings, view_topic)
    while time.perf_counter() - t0 < 240 and docs > 1.5 * users:
        time.sleep(10)
        docs = _count(settings, view_topic)
    compact_s, compact_applied, _, _ = _start_replica(settings)

    # the baseline: fold the whole listening topic at start, as the API did before view.taste
    t0 = time.perf_counter()
    states: dict[str, dict] = {}
    n = 0
    for batch in iter_batches(settings, listening, batch_size=10_000):
        for r in batch:
            e = codec.decode(r.value)
            states[e["user_id"]], _ = taste_view.evolve(states.get(e["user_id"]), e, lambda t: None)
            n += 1
    baseline_s = time.perf_counter() - t0
    return {
        f"{events}: listening events": events, f"{events}: users": users,
        f"{events}: produce_s": produce_s,
        f"{events}: taste stage fold events/s": events / stage_s,
        f"{events}: api start-up s, first (right after the fold)": start_s,
        f"{events}: api records read, first start": applied,
        f"{events}: api start-up s, after a log-cleaner pass": compact_s,
        f"{events}: api records read, after a log-cleaner pass": compact_applied,
        f"{events}: view.taste records after compaction": docs,
        f"{events}: api taste profiles": profiles,
        f"{events}: api replica MB (RSS growth)": replica_mb,
        f"{events}: baseline start-up s (fold listening)": baseline_s,
        f"{events}: baseline records read": n,
        f"{events}: baseline / api start-up (after the cleaner)": baseline_s / compact_s,
        f"{events}: baseline / api start-up (first)": baseline_s / start_s,
    }


def run(events: list[int], users: int = 20_000, tracks: int = 1000) -> dict:
    from benchmarks.cli import bench_broker

    out: dict = {}
    for n in events:
        with bench_broker() as (settings, _ready):
            out.update(one(settings, n, users, tracks))
    return out
