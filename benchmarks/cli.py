"""``playlog bench``: the benchmark suite. Each part prints a table and writes JSON results to
``$PLAYLOG_DATA_DIR/bench/<part>.json``; BENCHMARKS.md records the figures with the command.

Parts that need a broker start their own on free loopback ports (a temporary data dir), so a
benchmark never touches a running system's topics.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import click

from core.errors import PlaylogError
from core.settings import Settings, load

log = logging.getLogger(__name__)


def machine() -> dict:
    return {
        "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def record(part: str, results: dict, settings: Settings | None = None) -> Path:
    settings = settings or load()
    out = settings.data_dir / "bench"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{part}.json"
    path.write_text(json.dumps({"part": part, "machine": machine(), "results": results}, indent=2))
    click.echo(f"\n== {part} ==")
    width = max((len(k) for k in results), default=10)
    for k, v in results.items():
        if isinstance(v, float):
            v = f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
        elif isinstance(v, int):
            v = f"{v:,}"
        click.echo(f"  {k:<{width}}  {v}")
    click.echo(f"  (results: {path})")
    return path


@contextlib.contextmanager
def bench_broker(keep: Path | None = None) -> Iterator[tuple[Settings, float]]:
    """A private broker for one benchmark; yields settings pointing at it and its start-to-ready seconds."""
    from devstack.kafka import LocalKafka, free_port

    tmp = tempfile.mkdtemp(prefix="playlog-bench-")
    data = Path(keep or tmp)
    failed = True
    try:
        broker = LocalKafka(data / "kafka", port=free_port(), controller_port=free_port(), heap="1g")
        ready = broker.start(timeout=120)
        try:
            settings = replace(load(), bootstrap_servers=broker.bootstrap, data_dir=data, topic_prefix="bench.")
            yield settings, ready
            failed = False
        finally:
            broker.stop()
    finally:
        if failed:  # the logs and the broker's data say why: kept
            log.warning("benchmark failed: its broker data and logs are kept in %s", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _env_for(settings: Settings) -> None:
    """Make ``settings`` this process's configuration (the benchmarks' library calls read ``load()``)."""
    os.environ.update(settings.to_env({}))


def run_broker(events: int) -> dict:
    from benchmarks.loadgen import listening_events
    from schemas.codec import default_codec
    from topics.admin import create_topics
    from topics.consumer import iter_batches
    from topics.producer import EventProducer

    codec = default_codec()
    evs = list(listening_events(events))
    with bench_broker() as (settings, ready):
        create_topics(settings)
        p = EventProducer(settings)
        t0 = time.perf_counter()
        nbytes = 0
        for ev in evs:
            raw = codec.encode(ev)
            nbytes += len(raw)
            p.produce_raw(settings.topic_prefix + "listening", raw, key=ev["user_id"])
        p.flush()
        produce_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        n = 0
        for batch in iter_batches(settings, [settings.topic_prefix + "listening"], batch_size=10000):
            n += len(batch)
        consume_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        m = 0
        for batch in iter_batches(settings, [settings.topic_prefix + "listening"], batch_size=10000):
            for r in batch:
                codec.decode(r.value)
                m += 1
        decode_s = time.perf_counter() - t0
    assert n == m == len(evs), "consumed a different number of records than produced"
    return {
        "broker_start_to_ready_s": ready,
        "events": len(evs),
        "avg_event_bytes": nbytes / len(evs),
        "produce_events_per_s (encode+produce+flush, idempotent, acks=all)": len(evs) / produce_s,
        "produce_MB_per_s": nbytes / produce_s / 1e6,
        "consume_raw_events_per_s": n / consume_s,
        "consume_raw_MB_per_s": nbytes / consume_s / 1e6,
        "consume_and_decode_events_per_s": m / decode_s,
    }


def run_pipeline(events: int, workers: int, rate: int, seconds: float, tracks: int = 1000) -> dict:
    """Backlog throughput and event-to-view lag under a fixed rate, through plays, streams and royalties."""
    from benchmarks.cpu import cpu_seconds, pids_with_arg
    from benchmarks.loadgen import catalog_events, listening_events, pool_events
    from core.timefmt import period_of
    from devstack.workers import WorkerProcess, owner, source_lag, wait_caught_up
    from replay.fold_engine import compute
    from schemas.codec import default_codec
    from topics.admin import create_topics
    from topics.consumer import iter_batches
    from topics.producer import EventProducer

    codec = default_codec()
    start_ms = 1_779_000_000_000
    period = period_of(start_ms)
    head = catalog_events(tracks, start_ms) + pool_events(period, start_ms)
    backlog = list(listening_events(events, n_tracks=tracks, start_ms=start_ms))
    with bench_broker() as (settings, ready):
        _env_for(settings)
        create_topics(settings)
        p = EventProducer(settings)
        for ev in head:
            p.produce(ev)
        p.flush()
        procs = [WorkerProcess(settings, settings.data_dir / "logs", name=f"w{i + 1}").start() for i in range(workers)]
        try:
            wait_caught_up(settings, procs, timeout=300)  # workers up, partitions assigned, catalog folded
            # backlog phase: produce the backlog as fast as possible; time until every stage is caught up
            from topics.topic_catalog import key_of, topic_of

            encoded = [(settings.topic_prefix + topic_of(ev["type"]), codec.encode(ev), key_of(ev)) for ev in backlog]
            worker_pids = [w.pid for w in procs if w.pid is not None]
            broker_pids = pids_with_arg(str(settings.data_dir / "kafka"))
            cpu0 = cpu_seconds(worker_pids), cpu_seconds(broker_pids), os.times()
            first = time.perf_counter()
            for topic, raw, key in encoded:  # pre-encoded: the producer is not what is measured
                p.produce_raw(topic, raw, key=key)
            p.flush()
            produced_in = time.perf_counter() - first
            wait_caught_up(settings, procs, timeout=900)
            total = time.perf_counter()
            me = os.times()
            cpu = (cpu_seconds(worker_pids) - cpu0[0], cpu_seconds(broker_pids) - cpu0[1],
                   me.user + me.system - cpu0[2].user - cpu0[2].system)
            load1 = os.getloadavg()[0]
            # baseline: raw consumption of the same records from the same broker
            t0 = time.perf_counter()
            n = sum(len(b) for b in iter_batches(settings, [settings.topic_prefix + "listening"], batch_size=10000))
            raw_rate = n / (time.perf_counter() - t0)
            backlog_rate = len(backlog) / (total - first)
            # fixed-rate phase: lag samples while producing `rate` events/s
            live = list(listening_events(int(rate * seconds), n_tracks=tracks, start_ms=start_ms + 3_600_000, seed=11,
                                         prefix="l"))
            live_encoded = [(settings.topic_prefix + "listening", codec.encode(ev), ev["user_id"]) for ev in live]
            samples: list[int] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    lag = source_lag(settings)
                    samples.append(sum(lag.get(settings.topic_prefix + t, 0) for t in
                                       ("listening", "royalty.inputs", "royalty.plays", "royalty.tallies")))
                    time.sleep(0.2)

            th = threading.Thread(target=sample, daemon=True)
            th.start()
            t0 = time.perf_counter()
            for i, (topic, raw, key) in enumerate(live_encoded):
                p.produce_raw(topic, raw, key=key)
                if i % 1000 == 999:
                    ahead = (i + 1) / rate - (time.perf_counter() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
            p.flush()
            achieved = len(live) / (time.perf_counter() - t0)
            wait_caught_up(settings, procs, timeout=600)
            stop.set()
            th.join()
            # exactness: the live statement equals the fold engine over the same events
            live_csv = owner(procs).statement(period)
            from processors.statement import to_csv

            expect = to_csv(compute(head + backlog + live, period))
            exact = live_csv == expect
        finally:
            for w in procs:
                w.stop()
    lag_s = sorted(s / max(achieved, 1) for s in samples) or [0.0]
    return {
        "backlog_events": len(backlog),
        "workers": workers,
        "raw_consume_events_per_s (baseline)": raw_rate,
        "backlog_produce_s": produced_in,
        "backlog_events_per_s (plays+royalties+views)": backlog_rate,
        "ratio backlog / raw consumption": backlog_rate / raw_rate if raw_rate else None,
        "backlog_wall_s": total - first,
        "backlog_cpu_s_workers": cpu[0],
        "backlog_cpu_s_broker": cpu[1],
        "backlog_cpu_s_producer (this process)": cpu[2],
        "worker_cpu_us_per_event": cpu[0] / len(backlog) * 1e6,
        "load_average_1m_after_backlog": load1,
        "fixed_rate_target_events_per_s": rate,
        "fixed_rate_achieved_events_per_s": achieved,
        "lag_samples": len(samples),
        "lag_p50_s (records behind / rate)": statistics.median(lag_s),
        "lag_p99_s": lag_s[min(len(lag_s) - 1, int(len(lag_s) * 0.99))],
        "lag_max_records": max(samples or [0]),
        "live_statement_equals_fold_engine": exact,
        "statement_lines": expect.count("\n") - 1,
        "_codec": codec.__class__.__name__,
    }


@click.group("bench")
def bench_group() -> None:
    """Benchmarks (figures go into BENCHMARKS.md with the command that produced them)."""


@bench_group.command("broker")
@click.option("--events", default=200_000, show_default=True)
def bench_broker_cmd(events: int) -> None:
    """Broker start-to-ready time; Avro produce/consume throughput (events/s, MB/s)."""
    record("broker", run_broker(events))


@bench_group.command("pipeline")
@click.option("--events", default=300_000, show_default=True, help="Backlog of listening events.")
@click.option("--workers", default="2", show_default=True,
              help="Worker count, or several separated by commas (1,2,3): one private broker and run each.")
@click.option("--rate", default=5_000, show_default=True, help="Fixed produce rate for the lag phase (events/s).")
@click.option("--seconds", default=20.0, show_default=True)
def bench_pipeline_cmd(events: int, workers: str, rate: int, seconds: float) -> None:
    """Listening events through plays, streams and royalties: sustained events/s and lag p50/p99,
    with the raw consumption of the same records measured in the same run as the baseline."""
    counts = _counts(workers, "--workers")
    settings = load()
    runs = []
    for n in counts:
        runs.append(run_pipeline(events, n, rate, seconds))
        record(f"pipeline-{n}", runs[-1], settings)
    if len(runs) > 1:
        click.echo("\n  workers  backlog ev/s  raw ev/s  ratio  lag p50/p99 s  cpu s (workers/broker)  exact")
        for r in runs:
            click.echo(f"  {r['workers']:>7}  {r['backlog_events_per_s (plays+royalties+views)']:>12,.0f}"
                       f"  {r['raw_consume_events_per_s (baseline)']:>8,.0f}  {r['ratio backlog / raw consumption']:.2f}"
                       f"  {r['lag_p50_s (records behind / rate)']:.2f}/{r['lag_p99_s']:.2f}"
                       f"  {r['backlog_cpu_s_workers']:.0f}/{r['backlog_cpu_s_broker']:.0f}"
                       f"  {r['live_statement_equals_fold_engine']}")


def _counts(values: str, option: str) -> list[int]:
    """A comma list of positive integers (``1_000_000`` allowed) for ``option``."""
    try:
        ns = [int(x.replace("_", "")) for x in values.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"not a comma list of integers: {values!r}", param_hint=option) from None
    if not ns or min(ns) <= 0:
        raise click.BadParameter("give at least one positive count", param_hint=option)
    return ns


@bench_group.command("recovery")
@click.option("--plays", default="1000000,4000000", show_default=True,
              help="Comma list of play counts; each N on its own private broker.")
@click.option("--tracks", default=1000, show_default=True, help="Catalog size (tracks with rights in 8 countries).")
def bench_recovery_cmd(plays: str, tracks: int) -> None:
    """A fresh worker (local state wiped) recovering the royalty view, vs a restart with state kept
    and raw consumption of the changelog."""
    from benchmarks.recovery import run_recovery

    ns = _counts(plays, "--plays")
    settings = load()
    results, text = run_recovery(ns, tracks, keep_logs=settings.data_dir / "bench")
    click.echo(text)
    record("recovery", results, settings)


@bench_group.command("snapshot")
@click.option("--plays", default="1000000,4000000", show_default=True, help="Comma list of play counts.")
def bench_snapshot_cmd(plays: str) -> None:
    """Encoding/decoding a royalty view's checkpoint (format 2) against the one-document format 1 in
    the same run, and the longest wait of a heartbeat-like thread meanwhile. No broker."""
    from benchmarks.snapshot import run_snapshot

    ns = _counts(plays, "--plays")
    record("snapshot", run_snapshot(ns), load())


def _flat(result: object) -> dict:
    """A benchmark result as a flat dict (dataclass results included)."""
    import dataclasses

    if isinstance(result, dict):
        return result
    if dataclasses.is_dataclass(result):
        out = {}
        for k, v in dataclasses.asdict(result).items():  # type: ignore[arg-type]
            if isinstance(v, dict):
                out.update({f"{k}.{kk}": vv for kk, vv in v.items() if isinstance(vv, int | float | str | bool)})
            elif isinstance(v, int | float | str | bool):
                out[k] = v
        return out
    return {k: v for k, v in vars(result).items() if isinstance(v, int | float | str | bool)}


def _optional(part: str, fn: Callable[[], object]) -> None:
    try:
        result = fn()
        summary = getattr(result, "summary", None)
        if callable(summary):
            click.echo(summary())
        record(part, _flat(result))
    except (ImportError, AttributeError) as exc:
        raise PlaylogError(f"bench {part} is unavailable: {exc}") from None


@bench_group.command("ingest")
def bench_ingest_cmd() -> None:
    """Seconds of audio through the full ladder per wall second; synthetic catalog tracks/s."""
    def run() -> dict:
        from benchmarks.ingest import bench_ladder, bench_synthetic

        return {**{f"ladder.{k}": v for k, v in bench_ladder().items()},
                **{f"synthetic.{k}": v for k, v in bench_synthetic().items()}}

    _optional("ingest", run)


@bench_group.command("cdn")
def bench_cdn_cmd() -> None:
    """Segment bytes served with Range requests on loopback (MB/s)."""
    def run() -> dict:
        from benchmarks.cdn import run_cdn_bench

        return run_cdn_bench()

    _optional("cdn", run)


@bench_group.command("replay")
@click.option("--events", default=2_000_000, show_default=True)
def bench_replay_cmd(events: int) -> None:
    """Replay events/s from Parquet and JSON Lines, each engine."""
    def run() -> dict:
        from benchmarks.sinks import run_replay_suite

        return run_replay_suite(events)

    _optional("replay", run)


@bench_group.command("sink")
def bench_sink_cmd() -> None:
    """Rows/s into ClickHouse vs a bare clickhouse-driver insert of the same rows."""
    def run() -> dict:
        from benchmarks.sinks import run_sink_suite

        return run_sink_suite()

    _optional("sink", run)


@bench_group.command("api")
def bench_api_cmd() -> None:
    """play+manifest p50/p99 at a fixed rate and the highest sustained rate."""
    def run() -> dict:
        from benchmarks.api import run_api_bench

        return run_api_bench()

    _optional("api", run)


@bench_group.command("search")
@click.option("--tracks", default=1_000_000, show_default=True)
def bench_search_cmd(tracks: int) -> None:
    """Search p50/p95 over a synthetic catalog (index built from catalog view documents)."""
    def run() -> dict:
        from benchmarks.api import run_search_bench

        return run_search_bench(tracks=tracks)

    _optional("search", run)


@bench_group.command("api-start")
@click.option("--events", default="1000000,4000000", show_default=True,
              help="Comma list of listening history sizes; each on its own private broker.")
@click.option("--users", default=20_000, show_default=True)
def bench_api_start_cmd(events: str, users: int) -> None:
    """An API replica's start-up time against the listening history's length (it reads view.taste), with
    the old way (fold the whole listening topic at start) as the baseline in the same run."""
    def run() -> dict:
        from benchmarks.api_start import run as run_api_start

        return run_api_start(_counts(events, "--events"), users=users)

    _optional("api-start", run)


@bench_group.command("recs")
@click.option("--users", default=1000, show_default=True, help="Synthetic listeners (planted tastes).")
@click.option("--tracks", default=4000, show_default=True, help="Catalog size.")
@click.option("--seed", default=7, show_default=True, help="Random seed (the run is deterministic for it).")
def bench_recs_cmd(users: int, tracks: int, seed: int) -> None:
    """Offline evaluation of the recommender: hit rate@10 and NDCG@10 of home / Discover Weekly / radio
    against popularity and random baselines on held-out later plays. Pure CPU."""
    from benchmarks.recs import run

    results = run(users=users, tracks=tracks, seed=seed)
    table = results.pop("_table")
    record("recs", results)
    click.echo(f"\n  {'method':<28} {'hit@10':>7} {'ndcg@10':>8} {'hit / popularity':>17}")
    for method, hit, ndcg, ratio in table:
        click.echo(f"  {method:<28} {hit:>7.3f} {ndcg:>8.3f} {ratio:>16.2f}x")


@bench_group.command("featurestore")
@click.option("--users", default="1000,10000,50000", show_default=True, help="Comma list of listener counts.")
@click.option("--per-user", default=30, show_default=True, help="Streams per listener (skewed track choice).")
@click.option("--tracks", default=20_000, show_default=True, help="Catalog size.")
def bench_featurestore_cmd(users: str, per_user: int, tracks: int) -> None:
    """The feature store's SQL (playlog batch recs) on DuckDB: seconds per size of the item-item self-join."""
    from benchmarks.featurestore import run_one

    results: dict = {}
    for n in _counts(users, "--users"):
        r = run_one(n, per_user, tracks)
        for k, v in r.items():
            results[f"{n}_users_{k}"] = v
    record("featurestore", results)


@bench_group.command("all")
@click.pass_context
def bench_all_cmd(ctx: click.Context) -> None:
    """Every part in turn; a part that fails is reported and the others still run."""
    failed = []
    for name in ("broker", "pipeline", "ingest", "cdn", "replay", "sink", "api", "api-start", "search", "recs", "featurestore",
                 "recovery", "snapshot"):
        cmd = bench_group.commands[name]
        try:
            ctx.invoke(cmd)
        except PlaylogError as exc:
            failed.append(name)
            click.echo(f"bench {name} failed: {exc}", err=True)
    if failed:
        raise PlaylogError(f"bench parts failed: {', '.join(failed)}")
