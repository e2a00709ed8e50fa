"""``playlog batch recs``: the feature store the recommenders read, computed in SQL over the warehouse.

What it does, in order:

1. **Sync** (unless ``sync=False``): bring the warehouse up to date from the topics with the sink
   code itself (sinks/runner.py ``run_kafka`` to the end offsets seen at start, then stop): the
   DuckDB warehouse (``PLAYLOG_DATA_DIR/warehouse.duckdb``, consumer group ``playlog-sink-duckdb``:
   the batch *is* ``playlog sink duckdb`` run once), or ClickHouse through the ClickHouse sink.
   So it works on a stack started by ``playlog up`` with no sink at all.
2. **Compute** (batch/recs_sql.py, one SQL string per dialect): item-item cosine neighbours (top
   ``k`` per track) over the tracks each listener streamed before ``as_of``, and streams per
   (track, country) before ``as_of`` and in the last ``days`` days.
3. **Publish** to the compacted topics ``view.similar`` and ``view.popularity`` (key: canonical track
   id, value: a JSON document, see :func:`similar_docs` / :func:`popularity_docs`), after reading the
   keys they hold now: a track that had a document and has none in this run gets a tombstone.

The documents depend only on the log and ``as_of`` (no wall clock but the default ``as_of``), so a
rerun with the same ``as_of`` publishes the same bytes.

Why item-item in SQL and not ALS (``implicit``): the similarity is *exact* (integer co-occurrence
counts, the same numbers as the Python fold processors/recs/similarity.py, which a test checks),
*deterministic* (no random initialisation, no iteration count, the same bytes on every rerun),
needs *no native dependency* (no BLAS/OpenMP build of ``implicit``: the warehouse the analysts
already run computes it), and is *explainable* ("listeners of A also streamed B: c of them"). Its
cost is the self-join: one row per pair of tracks a listener streamed, ``sum_u d_u^2`` for ``d_u``
distinct tracks per listener, all computed in one warehouse query. That is fine at our scale
(thousands to a few million listeners with tens of distinct tracks each: 10^5 to 10^8 pair rows).
The crossover to ALS is at some 10^9 to 10^10 pair rows per run (tens of millions of active
listeners, or heavy listeners with thousands of distinct tracks), or when latent factors are wanted
for tracks with too few co-listeners to have neighbours at all (cold items): ALS costs
``O(nnz * factors)`` per iteration plus an approximate nearest-neighbour index, where the self-join
grows with ``d_u^2``. Measured (``playlog bench featurestore``, BENCHMARKS.md): 4.2 x 10^7 pair rows
(50,000 listeners x 30 streams) in about 22 s on two busy cores, linear in the pair rows.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from batch.recs_sql import popularity_sql, similar_sql
from core.errors import PlaylogError
from core.settings import Settings

log = logging.getLogger(__name__)

SIMILAR_TOPIC = "view.similar"
POPULARITY_TOPIC = "view.popularity"
DEFAULT_K = 50
DEFAULT_DAYS = 28
DUCKDB_GROUP = "playlog-sink-duckdb"  # the DuckDB sink's own group: the batch is that sink run once
CLICKHOUSE_GROUP = "playlog-sink-clickhouse"


def default_group(path: Path, default_path: Path, sink_group: str) -> str:
    """The consumer group of a sync into ``path``: the sink's own for the sink's own file (the batch is
    that sink run once), else one of that file's own (a group's offsets must describe one file's
    content: sharing the sink's group would make the sink skip what the batch loaded elsewhere)."""
    if Path(path).resolve() == Path(default_path).resolve():
        return sink_group
    digest = hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:10]
    return f"playlog-batch-{Path(path).stem}-{digest}"


@dataclass
class RecsReport:
    as_of: int
    warehouse: str
    synced_records: int = 0
    similar: int = 0
    popularity: int = 0
    tombstones: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


# -- rows -> documents (pure) -------------------------------------------------------------------
def similar_docs(rows: Iterable[tuple[str, str, float]], as_of: int) -> dict[str, dict[str, Any]]:
    """``(a, b, score)`` rows, best first per ``a`` -> ``{a: {"track_id", "neighbours": [[b, score]...],
    "as_of"}}`` (tracks in id order)."""
    out: dict[str, dict[str, Any]] = {}
    for a, b, score in rows:
        doc = out.get(a)
        if doc is None:
            doc = out[a] = {"track_id": a, "neighbours": [], "as_of": as_of}
        doc["neighbours"].append([b, float(score)])
    return {a: out[a] for a in sorted(out)}


def popularity_docs(rows: Iterable[tuple[str, str | None, int, int]], as_of: int, days: int
                    ) -> dict[str, dict[str, Any]]:
    """``(track, country, total, recent)`` rows -> ``{track: {"track_id", "streams" (all time before
    as_of), "by_country": {country: streams in the window} (countries with any, sorted), "days",
    "as_of"}}``."""
    out: dict[str, dict[str, Any]] = {}
    for t, country, total, recent in rows:
        doc = out.get(t)
        if doc is None:
            doc = out[t] = {"track_id": t, "streams": 0, "by_country": {}, "days": days, "as_of": as_of}
        doc["streams"] += int(total)
        if country and recent:
            doc["by_country"][country] = doc["by_country"].get(country, 0) + int(recent)
    for doc in out.values():
        doc["by_country"] = dict(sorted(doc["by_country"].items()))
    return {t: out[t] for t in sorted(out)}


def tombstones(existing: Iterable[str], current: Mapping[str, Any]) -> list[str]:
    """Keys that hold a document now and have none in this run (sorted)."""
    return sorted(set(existing) - set(current))


# -- the warehouses -----------------------------------------------------------------------------
def compute_duckdb(con: Any, as_of: int, days: int = DEFAULT_DAYS, k: int = DEFAULT_K
                   ) -> tuple[dict[str, dict], dict[str, dict]]:
    """(similar, popularity) documents from a DuckDB connection holding a ``plays`` table."""
    sim = similar_docs(con.execute(similar_sql("duckdb", as_of, k)).fetchall(), as_of)
    pop = popularity_docs(con.execute(popularity_sql("duckdb", as_of, days)).fetchall(), as_of, days)
    return sim, pop


def compute_clickhouse(client: Any, db: str, as_of: int, days: int = DEFAULT_DAYS, k: int = DEFAULT_K
                       ) -> tuple[dict[str, dict], dict[str, dict]]:
    """(similar, popularity) documents from ClickHouse (tables of database ``db``)."""
    client.execute(f"USE {db}")
    sim = similar_docs(client.execute(similar_sql("clickhouse", as_of, k)), as_of)
    pop = popularity_docs(client.execute(popularity_sql("clickhouse", as_of, days)), as_of, days)
    return sim, pop


def sync_duckdb(settings: Settings, path: Path, group: str = DUCKDB_GROUP):
    """The DuckDB warehouse at ``path``, brought up to the topics' current end offsets (open; the
    caller closes it)."""
    from sinks.duckdb_sink import DuckDBWarehouse
    from sinks.runner import run_kafka
    from topics.topic_catalog import source_topics

    try:
        wh = DuckDBWarehouse(path)
    except Exception as exc:  # duckdb.IOException: another process (a running sink) holds the file
        raise PlaylogError(f"cannot open the warehouse {path}: {str(exc).splitlines()[0]} "
                           "(is 'playlog sink duckdb' running on it? pass --warehouse-file)") from None
    try:
        stats = run_kafka(wh, settings, [t.name for t in source_topics()], group, until_end=True)
    except BaseException:
        wh.close()
        raise
    return wh, stats


# -- the view topics ----------------------------------------------------------------------------
def current_keys(settings: Settings, topic: str) -> set[str]:
    """Keys whose latest record on the compacted ``topic`` (name without prefix) is a document."""
    from topics.consumer import iter_batches

    live: dict[str, bool] = {}
    for batch in iter_batches(settings, [settings.topic_prefix + topic], group_id=None, until_end=True):
        for r in batch:
            if r.key is None:
                continue
            live[r.key.decode("utf-8", "replace")] = r.value is not None
    return {k for k, v in live.items() if v}


def publish(settings: Settings, topic: str, docs: Mapping[str, dict], existing: Iterable[str],
            producer: Any = None) -> int:
    """Every document of ``docs`` under its key, then a tombstone for each key of ``existing`` that is
    not in ``docs``; waits until the broker acknowledged all. Returns the number of tombstones."""
    from topics.producer import EventProducer

    own = producer is None
    producer = producer or EventProducer(settings)
    full = settings.topic_prefix + topic
    for key, doc in docs.items():
        producer.produce_raw(full, orjson.dumps(doc), key=key)
    gone = tombstones(existing, docs)
    for key in gone:
        producer.produce_raw(full, None, key=key)
    if own:
        producer.flush()
    return len(gone)


def run(settings: Settings, *, warehouse: str = "duckdb", as_of: int | None = None, days: int = DEFAULT_DAYS,
        k: int = DEFAULT_K, sync: bool = True, warehouse_file: Path | None = None, group: str | None = None,
        clickhouse_url: str | None = None) -> RecsReport:
    """Sync, compute and publish (module doc). ``as_of`` defaults to now (epoch ms)."""
    t0 = time.perf_counter()
    if as_of is None:
        as_of = int(time.time() * 1000)
    report = RecsReport(as_of=as_of, warehouse=warehouse)
    if warehouse == "duckdb":
        default_path = settings.data_dir / "warehouse.duckdb"
        path = Path(warehouse_file or default_path)
        if sync:
            wh, stats = sync_duckdb(settings, path, group or default_group(path, default_path, DUCKDB_GROUP))
            report.synced_records = stats.records
            con, close = wh.con, wh.close
        else:
            import duckdb

            if not path.exists():
                raise PlaylogError(f"no warehouse at {path}: run without --no-sync, or 'playlog sink duckdb'")
            con = duckdb.connect(str(path), read_only=True)
            close = con.close
        try:
            sim, pop = compute_duckdb(con, as_of, days, k)
        finally:
            close()
    elif warehouse == "clickhouse":
        sim, pop, report.synced_records = _clickhouse(settings, as_of, days, k, sync, warehouse_file, group,
                                                      clickhouse_url or settings.clickhouse_url)
    else:
        raise PlaylogError(f"unknown warehouse {warehouse!r} (expected duckdb or clickhouse)")
    from topics.producer import EventProducer

    existing = {t: current_keys(settings, t) for t in (SIMILAR_TOPIC, POPULARITY_TOPIC)}
    producer = EventProducer(settings)
    report.tombstones[SIMILAR_TOPIC] = publish(settings, SIMILAR_TOPIC, sim, existing[SIMILAR_TOPIC], producer)
    report.tombstones[POPULARITY_TOPIC] = publish(settings, POPULARITY_TOPIC, pop, existing[POPULARITY_TOPIC],
                                                  producer)
    producer.flush()
    report.similar, report.popularity = len(sim), len(pop)
    report.seconds = time.perf_counter() - t0
    log.info("batch recs as of %d on %s: %d similar, %d popularity documents, tombstones %s (%.1fs)",
             as_of, warehouse, report.similar, report.popularity, report.tombstones, report.seconds)
    return report


def _clickhouse(settings: Settings, as_of: int, days: int, k: int, sync: bool, warehouse_file: Path | None,
                group: str | None, url: str) -> tuple[dict, dict, int]:
    from clickhouse_driver.errors import Error as CHError

    from sinks.clickhouse import ClickHouseSink, client_for
    from sinks.duckdb_sink import DuckDBWarehouse
    from sinks.runner import run_kafka
    from topics.topic_catalog import source_topics

    synced = 0
    try:
        if sync:  # the ClickHouse sink run once (it derives plays in its DuckDB warehouse and publishes them)
            default_path = settings.data_dir / "ch-warehouse.duckdb"
            path = Path(warehouse_file or default_path)
            wh = DuckDBWarehouse(path)
            sink = ClickHouseSink(url, warehouse=wh)
            try:
                synced = run_kafka(sink, settings, [t.name for t in source_topics()],
                                   group or default_group(path, default_path, CLICKHOUSE_GROUP), until_end=True).records
            finally:
                sink.close()
                wh.close()
        client, db = client_for(url)
        try:
            sim, pop = compute_clickhouse(client, db, as_of, days, k)
        finally:
            client.disconnect()
    except (CHError, OSError, EOFError) as exc:
        raise PlaylogError(f"ClickHouse at {url} failed: {str(exc).splitlines()[0] if str(exc) else exc!r} "
                           "(set PLAYLOG_CLICKHOUSE_URL)") from None
    return sim, pop, synced
