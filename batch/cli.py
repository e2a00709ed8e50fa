"""``playlog batch recs``: compute the feature store (batch/recs.py) and publish it."""

from __future__ import annotations

from pathlib import Path

import click

from core.errors import PlaylogError


@click.group("batch")
def batch_group() -> None:
    """Batch jobs over the warehouse: the feature store the recommenders read."""


@batch_group.command("recs")
@click.option("--warehouse", type=click.Choice(["duckdb", "clickhouse"]), default="duckdb", show_default=True,
              help="Where the SQL runs: the embedded DuckDB warehouse, or ClickHouse (PLAYLOG_CLICKHOUSE_URL).")
@click.option("--days", default=28, show_default=True, type=click.IntRange(1, 36600),
              help="Popularity window: streams per country over the last N days before --as-of.")
@click.option("--as-of", "as_of", default=None, metavar="ISO",
              help="Count only plays before this instant (RFC 3339, e.g. 2026-05-19T12:00:00Z); default: now.")
@click.option("--top", "k", default=50, show_default=True, type=click.IntRange(1, 1000),
              help="Neighbours kept per track.")
@click.option("--sync/--no-sync", default=True, show_default=True,
              help="Bring the warehouse up to date from the topics first (the sink run once, then stopped).")
@click.option("--warehouse-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="DuckDB file (default: PLAYLOG_DATA_DIR/warehouse.duckdb; for ClickHouse, the sink's "
                   "ch-warehouse.duckdb).")
@click.option("--group", default=None,
              help="Consumer group of the sync (default: the sink's own for the sink's own file, else one of the file's own).")
@click.option("--every", default=0, show_default=True, type=click.IntRange(0, 7 * 86_400), metavar="SECONDS",
              help="Run again every SECONDS until stopped (a production deployment's schedule); 0: once. "
                   "A failed run is logged and retried at the next interval.")
def recs_command(warehouse, days, as_of, k, sync, warehouse_file, group, every) -> None:
    """Item-item neighbours and popularity, published to view.similar and view.popularity."""
    from batch.recs import POPULARITY_TOPIC, SIMILAR_TOPIC, run
    from core.settings import load
    from core.timefmt import parse_ts

    at = None
    if as_of is not None:
        try:
            at = parse_ts(as_of)
        except ValueError as exc:
            raise PlaylogError(f"--as-of must be an RFC 3339 UTC time like 2026-05-19T12:00:00Z: {exc}") from None
    if every and at is not None:
        raise click.UsageError("--every recomputes as of each run's time: it does not take --as-of")
    if every:
        import logging
        import time

        log = logging.getLogger("playlog.batch")
        while True:
            began = time.monotonic()
            try:
                rep = run(load(), warehouse=warehouse, as_of=None, days=days, k=k, sync=sync,
                          warehouse_file=warehouse_file, group=group)
                log.info("recs as of %s: %d neighbour and %d popularity documents (%.1fs)", rep.as_of,
                         rep.similar, rep.popularity, rep.seconds)
            except PlaylogError as exc:
                log.error("batch recs failed, retried in %ds: %s", every, exc)
            time.sleep(max(0.0, every - (time.monotonic() - began)))
    rep = run(load(), warehouse=warehouse, as_of=at, days=days, k=k, sync=sync, warehouse_file=warehouse_file,
              group=group)
    click.echo(f"recs as of {rep.as_of} ({warehouse}): synced {rep.synced_records} records; "
               f"{SIMILAR_TOPIC} {rep.similar} documents, {rep.tombstones[SIMILAR_TOPIC]} tombstones; "
               f"{POPULARITY_TOPIC} {rep.popularity} documents, {rep.tombstones[POPULARITY_TOPIC]} tombstones "
               f"({rep.seconds:.1f}s)")
