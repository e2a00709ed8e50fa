"""``playlog sink parquet|duckdb|clickhouse|query``: the sink workers and the analyst queries."""

from __future__ import annotations

from pathlib import Path

import click

from core.errors import PlaylogError


def _source_topics(topics: tuple[str, ...]) -> list[str]:
    from topics.topic_catalog import source_topics

    known = [t.name for t in source_topics()]
    if not topics:
        return known
    unknown = [t for t in topics if t not in known]
    if unknown:
        raise PlaylogError(f"unknown event topic(s) {', '.join(unknown)} (known: {', '.join(known)})")
    return list(topics)


def _common(f):
    f = click.option("--topic", "topics", multiple=True, help="Event topic (repeatable); default: every one.")(f)
    f = click.option("--group", default=None, help="Consumer group id (default: playlog-sink-<kind>).")(f)
    f = click.option("--follow", is_flag=True, help="Keep consuming (default: stop once caught up).")(f)
    f = click.option("--batch-size", default=5000, show_default=True, type=click.IntRange(1, 1_000_000))(f)
    return f


def _run(sink, kind: str, topics, group, follow, batch_size) -> None:
    from core.settings import load
    from sinks.runner import run_kafka

    settings = load()
    try:
        stats = run_kafka(
            sink, settings, _source_topics(topics), group or f"playlog-sink-{kind}",
            until_end=not follow, batch_size=batch_size,
        )
    finally:
        sink.close()
    click.echo(
        f"{kind}: {stats.records} records in {stats.batches} batches, {stats.written} written, "
        f"{stats.dead_lettered} dead-lettered"
    )


@click.group("sink")
def sink_group() -> None:
    """Sink workers (commit offsets only after the data is durable) and analyst queries."""


@sink_group.command("parquet")
@click.option("--archive", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Archive directory (default: PLAYLOG_DATA_DIR/archive).")
@_common
def parquet_command(archive, topics, group, follow, batch_size) -> None:
    """Archive every event topic as Parquet (topic/date partitions, files named by offset range)."""
    from core.settings import load
    from sinks.parquet import ParquetArchive

    root = archive or load().data_dir / "archive"
    _run(ParquetArchive(root), "parquet", topics, group, follow, batch_size)


@sink_group.command("duckdb")
@click.option("--warehouse", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="DuckDB file (default: PLAYLOG_DATA_DIR/warehouse.duckdb).")
@_common
def duckdb_command(warehouse, topics, group, follow, batch_size) -> None:
    """Load events into the DuckDB warehouse and keep plays/streams/statements derived."""
    from core.settings import load
    from sinks.duckdb_sink import DuckDBWarehouse

    path = warehouse or load().data_dir / "warehouse.duckdb"
    _run(DuckDBWarehouse(path), "duckdb", topics, group, follow, batch_size)


@sink_group.command("clickhouse")
@click.option("--local", is_flag=True, help="Start a private clickhouse-server under PLAYLOG_DATA_DIR/clickhouse.")
@click.option("--warehouse", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="DuckDB file the derived tables are computed in (default: PLAYLOG_DATA_DIR/ch-warehouse.duckdb).")
@_common
def clickhouse_command(local, warehouse, topics, group, follow, batch_size) -> None:
    """Load raw events into ClickHouse and publish derived plays/streams/statements."""
    from clickhouse_driver.errors import Error as CHError

    from core.settings import load
    from devstack.clickhouse import ClickHouseUnavailable, LocalClickHouse
    from sinks.clickhouse import ClickHouseSink
    from sinks.duckdb_sink import DuckDBWarehouse

    settings = load()
    server = None
    url = settings.clickhouse_url
    try:
        if local:
            server = LocalClickHouse(settings.data_dir / "clickhouse").start()
            url = server.url
            click.echo(f"clickhouse-server on {url}")
        wh = DuckDBWarehouse(warehouse or settings.data_dir / "ch-warehouse.duckdb")
        try:
            sink = ClickHouseSink(url, warehouse=wh)
        except (CHError, OSError, EOFError) as exc:
            raise PlaylogError(f"cannot reach ClickHouse at {url}: {exc} (use --local or set PLAYLOG_CLICKHOUSE_URL)") from None
        _run(sink, "clickhouse", topics, group, follow, batch_size)
    except ClickHouseUnavailable as exc:
        raise PlaylogError(str(exc)) from None
    finally:
        if server is not None:
            server.stop()


@sink_group.command("query")
@click.argument("name", required=False)
@click.option("--engine", type=click.Choice(["duckdb", "clickhouse"]), default="duckdb", show_default=True)
@click.option("--warehouse", type=click.Path(dir_okay=False, path_type=Path), default=None)
def query_command(name, engine, warehouse) -> None:
    """Run an analyst query (sinks/sql/) and print CSV; without NAME, list them."""
    from sinks.queries import query_names, run_clickhouse, run_duckdb

    if not name:
        for q in query_names():
            click.echo(q)
        return
    if name not in query_names():
        raise PlaylogError(f"unknown query {name!r} (known: {', '.join(query_names())})")
    from core.settings import load

    settings = load()
    if engine == "duckdb":
        import duckdb

        path = warehouse or settings.data_dir / "warehouse.duckdb"
        if not Path(path).exists():
            raise PlaylogError(f"no warehouse at {path}: run 'playlog sink duckdb' first")
        con = duckdb.connect(str(path), read_only=True)
        try:
            rows = run_duckdb(con, name)
        finally:
            con.close()
    else:
        from clickhouse_driver.errors import Error as CHError

        from sinks.clickhouse import client_for

        client, db = client_for(settings.clickhouse_url)
        try:
            rows = run_clickhouse(client, db, name)
        except (CHError, OSError, EOFError) as exc:
            raise PlaylogError(f"ClickHouse query failed: {str(exc).splitlines()[0]}") from None
    for r in rows:
        click.echo(",".join("" if v is None else str(v) for v in r))

