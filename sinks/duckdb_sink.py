"""The DuckDB warehouse sink (embedded default for analysts): events, plays, streams, statements.

- ``events``: the archive's wide layout (sinks/archive_schema.py), primary key (topic, partition,
  offset); a batch is inserted with an anti-join on that key, so a re-delivered batch adds nothing.
- ``plays`` / ``streams`` / ``statements``: derived with the sql replay engine's own SQL
  (replay/sql_engine.py) from ``events``, per period; a flush recomputes the periods the batch can
  affect (a play event: its month and the one before; catalog, rights and takedowns: their month
  and every later one present; a pool: its period) in the same transaction as the insert.

The file is ``PLAYLOG_DATA_DIR/warehouse.duckdb`` by default.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pyarrow as pa

from processors.rules import PLAY_TYPES
from replay.sql_engine import COLUMNS, PLAY_COLUMNS, TS_COLUMNS, period_bounds, statement_sql
from sinks.archive_schema import CONVERSION_ERRORS, archive_schema, records_to_table, unwritable
from sinks.base import Record

log = logging.getLogger(__name__)

DERIVED_DDL = """
CREATE TABLE IF NOT EXISTS plays (
  period VARCHAR NOT NULL, play_id VARCHAR NOT NULL, user_id VARCHAR, track_id VARCHAR, canon VARCHAR,
  country VARCHAR, product VARCHAR, context_uri VARCHAR, play_time_ms BIGINT, day DATE, ms BIGINT,
  skipped BOOLEAN, is_stream BOOLEAN, PRIMARY KEY (play_id)
);
CREATE TABLE IF NOT EXISTS streams (
  period VARCHAR NOT NULL, play_id VARCHAR NOT NULL, user_id VARCHAR, track_id VARCHAR, country VARCHAR,
  product VARCHAR, play_time_ms BIGINT, day DATE, ms BIGINT, PRIMARY KEY (play_id)
);
CREATE TABLE IF NOT EXISTS statements (
  period VARCHAR NOT NULL, country VARCHAR NOT NULL, product VARCHAR NOT NULL, rightsholder_id VARCHAR NOT NULL,
  track_id VARCHAR NOT NULL, streams BIGINT NOT NULL, amount_micros BIGINT NOT NULL,
  PRIMARY KEY (period, country, product, rightsholder_id, track_id)
);
"""

CATALOG_TYPES = ("track.ingested", "rights.changed", "track.taken_down")

#: errors of a flush that a value caused, not the file or the disk (the runner isolates the record)
DATA_ERRORS: tuple[type[BaseException], ...] = (*CONVERSION_ERRORS, duckdb.ConversionException,
                                                duckdb.OutOfRangeException, duckdb.ConstraintException,
                                                duckdb.InvalidInputException, duckdb.TypeMismatchException)


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_string(t):
        return "VARCHAR"
    if pa.types.is_int32(t):
        return "INTEGER"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_float64(t):
        return "DOUBLE"
    if pa.types.is_float32(t):
        return "FLOAT"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    if pa.types.is_list(t):
        return _duck_type(t.value_type) + "[]"
    if pa.types.is_struct(t):
        return "STRUCT(" + ", ".join(f'"{f.name}" {_duck_type(f.type)}' for f in t) + ")"
    raise ValueError(f"no DuckDB type for {t}")


def events_ddl() -> str:
    cols = [f'"{f.name}" {_duck_type(f.type)}{"" if f.nullable else " NOT NULL"}' for f in archive_schema()]
    return f"CREATE TABLE IF NOT EXISTS events ({', '.join(cols)}, PRIMARY KEY (topic, \"partition\", \"offset\"))"


def upgrade_ddl() -> list[str]:
    """``ADD COLUMN IF NOT EXISTS`` for every (nullable) archive column, so an existing warehouse
    follows schema evolution (an optional field added to an event type, e.g. ``received_at``)."""
    return [f'ALTER TABLE events ADD COLUMN IF NOT EXISTS "{f.name}" {_duck_type(f.type)}'
            for f in archive_schema() if f.nullable]


def ev_view_sql(table: str = "events") -> str:
    """The sql engine's input relation (COLUMNS, timestamps as epoch ms) over the events table."""
    cols = [f"epoch_ms({c}) AS {c}" if c in TS_COLUMNS else c for c in COLUMNS]
    return f"SELECT {', '.join(cols)} FROM {table}"


def _month_add(period: str, n: int) -> str:
    y, m = int(period[:4]), int(period[5:])
    k = y * 12 + (m - 1) + n
    return f"{k // 12:04d}-{k % 12 + 1:02d}"


class DuckDBWarehouse:
    """Sink writing the warehouse file at ``path`` (see module doc)."""

    name = "duckdb"
    data_errors = DATA_ERRORS

    def __init__(self, path: Path | str, derive: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(str(self.path))
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET enable_progress_bar = false")
        self.con.execute(events_ddl())
        for ddl in upgrade_ddl():  # a warehouse written before a field was added gets its column
            self.con.execute(ddl)
        self.con.execute(DERIVED_DDL)
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW ev AS {ev_view_sql()}")
        self.derive = derive
        self._pending: list[Record] = []
        self.last_refreshed: list[str] = []

    def write(self, batch: list[Record]) -> None:
        self._pending.extend(batch)

    def reject(self, batch: list[Record]) -> list[tuple[int, str]]:
        """``(index, why)`` of the records no ``events`` row can hold (the runner dead-letters them)."""
        return unwritable(batch, archive_schema())

    def discard(self) -> None:
        """Forget what was written since the last flush (a failed flush rolled its transaction back)."""
        self._pending.clear()

    def affected_periods(self, table: pa.Table) -> list[str]:
        """Periods whose plays/streams/statement a batch of events can change."""
        self.con.register("batch_in", table)
        try:
            rows = self.con.execute(
                """
                SELECT type, strftime(occurred_at, '%Y-%m') AS m, period FROM batch_in
                GROUP BY ALL
                """
            ).fetchall()
            latest = self.con.execute(
                "SELECT max(strftime(occurred_at, '%Y-%m')) FROM events WHERE type LIKE 'play.%'"
            ).fetchall()[0][0]
        finally:
            self.con.unregister("batch_in")
        out: set[str] = set()
        for etype, month, period in rows:
            if etype in PLAY_TYPES:
                out |= {month, _month_add(month, -1)}
            elif etype in CATALOG_TYPES:
                p = month
                end = max(latest or month, month)
                while p <= end:
                    out.add(p)
                    p = _month_add(p, 1)
            elif etype == "royalty.pool_declared" and period:
                out.add(period)
        return sorted(out)

    def flush(self) -> None:
        if not self._pending:
            return
        uniq = {(r[0], r[1], r[2]): r for r in self._pending}
        table = records_to_table(list(uniq.values()), archive_schema())
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            con.register("batch_in", table)
            con.execute(
                """INSERT INTO events SELECT b.* FROM batch_in b
                   ANTI JOIN events e ON e.topic = b.topic AND e."partition" = b."partition" AND e."offset" = b."offset"
                """
            )
            con.unregister("batch_in")
            periods = self.affected_periods(table) if self.derive else []
            for period in periods:
                self._refresh_period(period)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        self.last_refreshed = periods
        self._pending.clear()

    def _refresh_period(self, period: str) -> None:
        lo, hi = period_bounds(period)
        con = self.con
        con.execute("DELETE FROM plays WHERE period = ?", [period])
        con.execute("DELETE FROM streams WHERE period = ?", [period])
        con.execute("DELETE FROM statements WHERE period = ?", [period])
        cols = ", ".join(PLAY_COLUMNS)
        con.execute(
            f"""INSERT INTO plays (period, {cols})
                SELECT '{period}', play_id, user_id, track_id, canon, country, product, context_uri, play_time_ms,
                       make_date(1970, 1, 1) + CAST(day AS INTEGER), ms, skipped, is_stream
                FROM ({statement_sql(lo, hi, kind="plays")})"""
        )
        con.execute(
            """INSERT INTO streams SELECT period, play_id, user_id, canon, country, product, play_time_ms, day, ms
               FROM plays WHERE period = ? AND is_stream""",
            [period],
        )
        con.execute(
            f"""INSERT INTO statements SELECT '{period}', country, product, rightsholder_id, track_id, streams,
                amount_micros FROM ({statement_sql(lo, hi)})"""
        )

    def refresh(self, periods: list[str]) -> None:
        """Recompute the derived tables of some periods (e.g. after loading events in bulk)."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            for p in periods:
                self._refresh_period(p)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def statement(self, period: str) -> list[tuple]:
        return self.con.execute(
            """SELECT period, country, product, rightsholder_id, track_id, streams, amount_micros
               FROM statements WHERE period = ? ORDER BY country, product, rightsholder_id, track_id""",
            [period],
        ).fetchall()

    def close(self) -> None:
        self._pending.clear()
        self.con.close()
