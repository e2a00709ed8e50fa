"""Benchmark helpers: synthetic archives, replay speed of the sql engine, ClickHouse sink speed.

The ``playlog bench`` group (playlog/bench.py, the lead's) can call these; each returns plain
dicts of figures so BENCHMARKS.md can record them. Nothing here is a test: no timing asserts.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from replay.sql_engine import compute, period_bounds
from sinks.archive_schema import TS, archive_schema, file_path
from sinks.parquet import write_table_atomic

log = logging.getLogger(__name__)

COUNTRIES = ["US", "DE", "SE", "JP", "BR", "FR", "GB", "IN", "MX", "NG"]
PRODUCTS = ["free", "premium"]


def _strs(prefix: str, ids: np.ndarray, width: int = 0) -> pa.Array:
    s = pc.cast(pa.array(ids, type=pa.int64()), pa.string())
    if width:
        s = pc.utf8_lpad(s, width=width, padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), s, "")


def _full(table_cols: dict[str, pa.Array], n: int) -> pa.Table:
    """A table in the archive schema with the given columns, the rest null."""
    schema = archive_schema()
    arrays = [table_cols[f.name] if f.name in table_cols else pa.nulls(n, type=f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def synthetic_events(n_events: int, period: str = "2026-05", seed: int = 7, n_tracks: int = 5000,
                     n_users: int = 200_000) -> dict[str, pa.Table]:
    """Synthetic royalty-relevant events in the archive schema, per topic.

    About 4 listening events per play (started, two progress, completed or skipped); a catalog of
    ``n_tracks`` tracks (every 50th an alias upload of another ISRC), rights for every (track,
    country), a takedown now and then, and one pool per (country, product).
    """
    rng = np.random.default_rng(seed)
    lo, hi = period_bounds(period)
    n_plays = max(1, n_events // 4)
    play = np.arange(n_plays)
    t0 = rng.integers(lo, hi - 600_000, n_plays)
    ms = rng.integers(0, 300_000, n_plays)
    users = rng.integers(0, n_users, n_plays)
    tracks = rng.integers(0, n_tracks, n_plays)
    country = rng.integers(0, len(COUNTRIES), n_plays)
    product = rng.integers(0, 2, n_plays)
    kinds = [("play.started", t0, None), ("play.progress", t0 + ms // 3, ms // 3),
             ("play.progress", t0 + 2 * (ms // 3), 2 * (ms // 3)), ("play.completed", t0 + ms, ms)]
    parts = []
    for k, (etype, ts, played) in enumerate(kinds):
        n = n_plays
        cols = {
            "topic": pa.array(np.full(n, "listening", dtype=object), pa.string()),
            "partition": pa.array((users % 8).astype(np.int32)),
            "offset": pa.array(play * 4 + k, pa.int64()),
            "key": _strs("u", users, 6),
            "type": pa.array(np.full(n, etype, dtype=object), pa.string()),
            "event_id": _strs(f"e{k}-", play),
            "occurred_at": pa.array(ts, pa.int64()).cast(TS),
            "play_id": _strs("p", play),
            "user_id": _strs("u", users, 6),
            "track_id": _strs("t", tracks, 5),
            "country": pa.array(np.array(COUNTRIES, dtype=object)[country], pa.string()),
            "product": pa.array(np.array(PRODUCTS, dtype=object)[product], pa.string()),
        }
        if played is not None:
            cols["ms_played"] = pa.array(played.astype(np.int32))
        if etype == "play.started":
            cols["device_id"] = _strs("d", users, 6)
            cols["offline"] = pa.array(np.zeros(n, dtype=bool))
        parts.append(_full(cols, n))
    listening = pa.concat_tables(parts)

    # catalog: tracks (every 50th track is an alias: same ISRC as the track before it)
    tid = np.arange(n_tracks)
    isrc_no = np.where(tid % 50 == 49, tid - 1, tid)
    rs = [[{"rightsholder_id": f"rh{i % 97:02d}", "share_ppm": 600_000},
           {"rightsholder_id": f"rh{(i * 7 + 1) % 97:02d}x", "share_ppm": 400_000}] for i in range(n_tracks)]
    cat = _full({
        "topic": pa.array(["catalog"] * n_tracks),
        "partition": pa.array(np.zeros(n_tracks, dtype=np.int32)),
        "offset": pa.array(tid, pa.int64()),
        "key": _strs("t", tid, 5),
        "type": pa.array(["track.ingested"] * n_tracks),
        "event_id": _strs("ti", tid),
        "occurred_at": pa.array(lo - 10 * 86_400_000 + tid, pa.int64()).cast(TS),
        "track_id": _strs("t", tid, 5),
        "isrc": _strs("ISRC", isrc_no, 6),
        "rightsholders": pa.array(rs, archive_schema().field("rightsholders").type),
    }, n_tracks)
    # rights: allowed everywhere except every 13th (track, country)
    rt, rc = np.meshgrid(tid, np.arange(len(COUNTRIES)), indexing="ij")
    rt, rc = rt.ravel(), rc.ravel()
    nr = len(rt)
    rights = _full({
        "topic": pa.array(["rights"] * nr),
        "partition": pa.array(np.zeros(nr, dtype=np.int32)),
        "offset": pa.array(np.arange(nr), pa.int64()),
        "key": _strs("t", rt, 5),
        "type": pa.array(["rights.changed"] * nr),
        "event_id": _strs("rc", np.arange(nr)),
        "occurred_at": pa.array(np.full(nr, lo - 5 * 86_400_000), pa.int64()).cast(TS),
        "track_id": _strs("t", rt, 5),
        "territory": pa.array(np.array(COUNTRIES, dtype=object)[rc], pa.string()),
        "allowed": pa.array((rt * 10 + rc) % 13 != 0),
        "valid_from": pa.nulls(nr, TS),
        "valid_to": pa.nulls(nr, TS),
    }, nr)
    npools = len(COUNTRIES) * 2
    pools = _full({
        "topic": pa.array(["finance"] * npools),
        "partition": pa.array(np.zeros(npools, dtype=np.int32)),
        "offset": pa.array(np.arange(npools), pa.int64()),
        "key": pa.array([f"{period}|{c}|{p}" for c in COUNTRIES for p in PRODUCTS]),
        "type": pa.array(["royalty.pool_declared"] * npools),
        "event_id": _strs("pd", np.arange(npools)),
        "occurred_at": pa.array(np.full(npools, hi), pa.int64()).cast(TS),
        "period": pa.array([period] * npools),
        "country": pa.array([c for c in COUNTRIES for _ in PRODUCTS]),
        "product": pa.array([p for _ in COUNTRIES for p in PRODUCTS]),
        "amount_micros": pa.array(np.arange(npools, dtype=np.int64) * 1_000_003_917 + 12_345_678_901),
        "currency": pa.array(["EUR"] * npools),
    }, npools)
    return {"listening": listening, "catalog": cat, "rights": rights, "finance": pools}


def write_synthetic_archive(root: Path | str, n_events: int, period: str = "2026-05", seed: int = 7) -> int:
    """Write a synthetic archive (archive layout, one file per topic-partition-date); events written."""
    root = Path(root)
    total = 0
    for topic, table in synthetic_events(n_events, period, seed).items():
        days = pc.strftime(table.column("occurred_at"), format="%Y-%m-%d")
        parts = table.column("partition")
        for part in sorted(set(parts.to_pylist())):
            tpart = table.filter(pc.equal(parts, part))
            dpart = days.filter(pc.equal(parts, part))
            for day in sorted(set(dpart.to_pylist())):
                chunk = tpart.filter(pc.equal(dpart, day)).sort_by("offset")
                offs = chunk.column("offset")
                path = file_path(root, topic, day, part, pc.min(offs).as_py(), pc.max(offs).as_py())
                write_table_atomic(chunk, path)
                total += chunk.num_rows
    return total


def write_synthetic_jsonl(path: Path | str, n_events: int, period: str = "2026-05", seed: int = 7) -> int:
    """The same synthetic events as JSON Lines (the interchange form)."""
    from schemas.codec import default_codec
    from sinks.archive_schema import table_to_records

    codec = default_codec()
    n = 0
    with open(path, "wb") as fh:
        for table in synthetic_events(n_events, period, seed).values():
            for batch in table.to_batches(max_chunksize=50_000):
                for _, _, _, _, ev in table_to_records(pa.Table.from_batches([batch])):
                    fh.write(orjson.dumps(codec.to_json(ev)) + b"\n")
                    n += 1
    return n


def bench_replay(source: Path | str, period: str = "2026-05", validate: str = "codec", repeat: int = 3,
                 threads: int | None = None) -> dict[str, Any]:
    """Events/s of the sql engine over a source (best of ``repeat`` runs)."""
    source = Path(source)
    n_events = _count_events(source)
    best = float("inf")
    lines = 0
    for _ in range(repeat):
        t = time.perf_counter()
        res = compute(source, period, validate=validate, threads=threads)
        best = min(best, time.perf_counter() - t)
        lines = len(res.lines)
    return {
        "source": str(source),
        "engine": "sql",
        "validate": validate if source.suffix == ".jsonl" else "archive",
        "events": n_events,
        "seconds": round(best, 3),
        "events_per_s": int(n_events / best) if best > 0 else None,
        "statement_lines": lines,
    }


def _count_events(source: Path) -> int:
    if source.suffix == ".jsonl":
        with open(source, "rb") as fh:
            return sum(1 for line in fh if line.strip())
    import pyarrow.parquet as pq

    files = sorted(source.rglob("*.parquet")) if source.is_dir() else [source]
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def _fold_replay(path: Path, period: str) -> int:
    """The fold engine over a JSON Lines file (codec + processors.royalties); statement lines."""
    from processors.royalties import fold, statement
    from schemas.codec import EventError, default_codec

    codec = default_codec()
    events = []
    with open(path, "rb") as fh:
        for line in fh:
            try:
                events.append(codec.from_json(orjson.loads(line)))
            except (EventError, orjson.JSONDecodeError):
                continue
    return len(statement(fold(events), period))


def run_replay_suite(n_events: int = 2_000_000, period: str = "2026-05", jsonl_events: int = 200_000,
                     workdir: Path | str | None = None) -> dict[str, Any]:
    """Replay events/s: sql engine from Parquet (n_events), sql (codec / sql validation) and fold from JSONL."""
    import tempfile

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        root = Path(tmp) / "archive"
        write_synthetic_archive(root, n_events, period)
        out: dict[str, Any] = {}
        r = bench_replay(root, period, repeat=3)
        out["sql.parquet.events"] = r["events"]
        out["sql.parquet.seconds"] = r["seconds"]
        out["sql.parquet.events_per_s"] = r["events_per_s"]
        jsonl = Path(tmp) / "events.jsonl"
        n = write_synthetic_jsonl(jsonl, jsonl_events, period)
        for mode in ("codec", "sql"):
            r = bench_replay(jsonl, period, validate=mode, repeat=2)
            out[f"sql.jsonl_{mode}.events"] = n
            out[f"sql.jsonl_{mode}.events_per_s"] = r["events_per_s"]
        try:
            t = time.perf_counter()
            _fold_replay(jsonl, period)
            dt = time.perf_counter() - t
            out["fold.jsonl.events"] = n
            out["fold.jsonl.events_per_s"] = int(n / dt)
        except ImportError as exc:  # the fold engine lives in processors/
            log.warning("fold engine unavailable for the bench: %s", exc)
    log.info("replay bench: %s", out)
    return out


def run_sink_suite(n_rows: int = 200_000, batch: int = 20_000, workdir: Path | str | None = None) -> dict[str, Any]:
    """Rows/s of the ClickHouse sink (raw events) vs a bare clickhouse-driver insert of the same rows.

    Starts a private clickhouse-server (devstack/clickhouse.py). Both paths insert the same
    column values in the same batch size; the sink also decodes nothing (records are given) but
    builds rows from events (JSON payload) and uses its ReplacingMergeTree table.
    """
    import tempfile

    from clickhouse_driver import Client

    from devstack.clickhouse import LocalClickHouse
    from schemas.codec import default_codec
    from sinks.archive_schema import table_to_records
    from sinks.clickhouse import EVENT_COLUMNS, ClickHouseSink, _event_row

    listening = synthetic_events(n_rows, seed=11)["listening"].slice(0, n_rows)
    records = table_to_records(listening)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp, LocalClickHouse(Path(tmp) / "ch") as ch:
        sink = ClickHouseSink(ch.url.rsplit("/", 1)[0] + "/bench")
        t = time.perf_counter()
        for i in range(0, len(records), batch):
            sink.write(records[i : i + batch])
            sink.flush()
        sink_s = time.perf_counter() - t
        codec = default_codec()
        rows = [_event_row(r, codec) for r in records]
        bare = Client(host="127.0.0.1", port=ch.tcp_port)
        bare.execute("CREATE TABLE bench.bare AS bench.events")
        cols = ", ".join(f"`{c}`" for c in EVENT_COLUMNS)
        t = time.perf_counter()
        for i in range(0, len(rows), batch):
            bare.execute(f"INSERT INTO bench.bare ({cols}) VALUES", rows[i : i + batch])
        bare_s = time.perf_counter() - t
        got = sink.client.execute("SELECT count() FROM bench.events FINAL")[0][0]
        sink.close()
        bare.disconnect()
    out = {
        "rows": len(records),
        "rows_in_clickhouse": got,
        "sink.rows_per_s": int(len(records) / sink_s),
        "bare_driver.rows_per_s": int(len(records) / bare_s),
        "ratio_sink_to_bare": round(bare_s / sink_s, 3),
    }
    log.info("sink bench: %s", out)
    return out
