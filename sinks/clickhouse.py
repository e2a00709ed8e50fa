"""The ClickHouse sink for analysts (clickhouse-driver, native protocol).

Tables (DDL below; it runs on Debian's clickhouse-server 18.16 and on current ClickHouse, checked
against the ``chdb`` engine in tests/unit/test_archive_clickhouse_ddl.py): no LowCardinality,
DateTime64 or Map; event time is kept both as ``DateTime`` (seconds, for grouping) and as
``occurred_at_ms Int64`` (exact).

- ``events``: raw events, ``ReplacingMergeTree`` ordered by (topic, partition, offset): a retried
  insert of the same records leaves one row per key in ``FINAL`` reads.
- ``plays`` / ``streams`` / ``statements``: the derived tables, computed by the DuckDB warehouse
  (the sql replay engine's SQL) and published here per refreshed period with a higher ``version``;
  ``ReplacingMergeTree(version)`` keeps the newest row per key in ``FINAL`` reads. A stream or a
  statement line that disappeared is published as a tombstone (``active = 0`` / ``streams = 0``).

On servers that support it (>= 22.2) every insert also carries an ``insert_deduplication_token``
made of the batch's key range, so the server itself drops a retried block.

A record ClickHouse cannot hold (an ``occurred_at`` outside ``DateTime``, 1970-01-01 to
2106-02-07, which the codec's years 1 to 9999 allow; a value beyond its column's integer type) is
refused by :meth:`ClickHouseSink.reject` before anything is written, in ClickHouse or in the
warehouse the derived tables come from, and the runner dead-letters it: clickhouse-driver would
otherwise fail the whole insert, or silently store a ``Date`` out of range as 1970-01-01.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import time
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlparse

import orjson

from schemas.codec import default_codec
from sinks.base import Record

log = logging.getLogger(__name__)

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS {db}.events (
    `topic` String, `partition` Int32, `offset` Int64, `key` Nullable(String), `type` String,
    `event_id` String, `occurred_at` DateTime, `occurred_at_ms` Int64, `event_date` Date,
    `play_id` Nullable(String), `user_id` Nullable(String), `track_id` Nullable(String),
    `country` Nullable(String), `product` Nullable(String), `ms_played` Nullable(Int32),
    `context_uri` Nullable(String), `payload` String
) ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(event_date) ORDER BY (`topic`, `partition`, `offset`)""",
    """CREATE TABLE IF NOT EXISTS {db}.plays (
    `period` String, `play_id` String, `user_id` String, `track_id` String, `canon` Nullable(String),
    `country` String, `product` String, `context_uri` Nullable(String), `play_time_ms` Int64, `day` Date,
    `ms` Int64, `skipped` UInt8, `is_stream` UInt8, `version` UInt64
) ENGINE = ReplacingMergeTree(`version`) ORDER BY `play_id`""",
    """CREATE TABLE IF NOT EXISTS {db}.streams (
    `period` String, `play_id` String, `user_id` String, `track_id` String, `country` String, `product` String,
    `play_time_ms` Int64, `day` Date, `ms` Int64, `active` UInt8, `version` UInt64
) ENGINE = ReplacingMergeTree(`version`) ORDER BY `play_id`""",
    """CREATE TABLE IF NOT EXISTS {db}.statements (
    `period` String, `country` String, `product` String, `rightsholder_id` String, `track_id` String,
    `streams` Int64, `amount_micros` Int64, `version` UInt64
) ENGINE = ReplacingMergeTree(`version`) ORDER BY (`period`, `country`, `product`, `rightsholder_id`, `track_id`)""",
)

EVENT_COLUMNS = (
    "topic", "partition", "offset", "key", "type", "event_id", "occurred_at", "occurred_at_ms", "event_date",
    "play_id", "user_id", "track_id", "country", "product", "ms_played", "context_uri", "payload",
)
PLAY_COLUMNS = ("period", "play_id", "user_id", "track_id", "canon", "country", "product", "context_uri",
                "play_time_ms", "day", "ms", "skipped", "is_stream", "version")
STREAM_COLUMNS = ("period", "play_id", "user_id", "track_id", "country", "product", "play_time_ms", "day", "ms",
                  "active", "version")
STATEMENT_COLUMNS = ("period", "country", "product", "rightsholder_id", "track_id", "streams", "amount_micros",
                     "version")


def ddl(db: str) -> list[str]:
    return [f"CREATE DATABASE IF NOT EXISTS {db}"] + [s.format(db=db) for s in DDL]


def parse_url(url: str) -> dict[str, Any]:
    """``clickhouse://[user[:password]@]host[:port]/database`` -> connection kwargs + database."""
    u = urlparse(url)
    if u.scheme not in ("clickhouse", "tcp"):
        raise ValueError(f"PLAYLOG_CLICKHOUSE_URL must look like clickhouse://host:9000/db, got {url!r}")
    return {
        "host": u.hostname or "127.0.0.1",
        "port": u.port or 9000,
        "user": u.username or "default",
        "password": u.password or "",
        "database": (u.path or "/").strip("/") or "playlog",
    }


def client_for(url: str, **kwargs: Any):
    from clickhouse_driver import Client

    cfg = parse_url(url)
    db = cfg.pop("database")
    return Client(**cfg, **kwargs), db


DATETIME_MAX_MS = (2**32 - 1) * 1000 + 999  # ClickHouse DateTime: UInt32 seconds since the epoch
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


def row_problem(rec: Record) -> str | None:
    """Why ClickHouse cannot hold the ``events`` row of a record (naming the field), or None."""
    topic, partition, offset, key, ev = rec
    ms = ev.get("occurred_at")
    if not isinstance(ms, int) or not 0 <= ms <= DATETIME_MAX_MS:
        return f"field 'occurred_at' is outside ClickHouse DateTime (1970-01-01 to 2106-02-07): {ms}"
    for name, value, (lo, hi) in (("partition", partition, _INT32), ("offset", offset, _INT64),
                                  ("ms_played", ev.get("ms_played"), _INT32)):
        if value is not None and (not isinstance(value, int) or not lo <= value <= hi):
            return f"field {name!r} is out of range for ClickHouse Int{32 if hi == _INT32[1] else 64}: {value}"
    for name in ("topic", "type", "event_id", "play_id", "user_id", "track_id", "country", "product",
                 "context_uri"):
        value = topic if name == "topic" else ev.get(name)
        if value is not None and not isinstance(value, str):
            return f"field {name!r} must be a string for ClickHouse, got {type(value).__name__}"
    try:
        orjson.dumps(ev)
    except TypeError as exc:
        return f"payload cannot be JSON: {exc}"
    return None


def _event_row(rec: Record, codec) -> tuple:
    topic, partition, offset, key, ev = rec
    ms = ev["occurred_at"]
    dt = datetime.fromtimestamp(ms // 1000, tz=UTC).replace(tzinfo=None)
    return (
        topic, partition, offset, key, ev["type"], ev["event_id"], dt, ms, dt.date(),
        ev.get("play_id"), ev.get("user_id"), ev.get("track_id"), ev.get("country"), ev.get("product"),
        ev.get("ms_played"), ev.get("context_uri"),
        orjson.dumps(ev).decode(),  # the in-memory form: timestamps as epoch ms
    )


class ClickHouseSink:
    """Raw events into ClickHouse; derived tables published from a DuckDB warehouse if given."""

    name = "clickhouse"

    def __init__(self, url: str, warehouse=None, client=None):
        self.url = url
        if client is None:
            client, self.db = client_for(url, settings={"insert_block_size": 1_000_000})
        else:
            self.db = parse_url(url)["database"]
        self.client = client
        self.warehouse = warehouse
        self.codec = default_codec()
        self._pending: list[Record] = []
        self._dedup_token = self._supports_dedup_token()
        self.ensure_schema()

    def _supports_dedup_token(self) -> bool:
        try:
            version = self.client.execute("SELECT version()")[0][0]
            major, minor = (int(x) for x in version.split(".")[:2])
            return (major, minor) >= (22, 2)
        except Exception:  # pragma: no cover - ancient or odd servers
            return False

    def ensure_schema(self) -> None:
        for stmt in ddl(self.db):
            self.client.execute(stmt)

    def write(self, batch: list[Record]) -> None:
        self._pending.extend(batch)

    @property
    def data_errors(self) -> tuple[type[BaseException], ...]:
        """Errors of a flush that a value caused (the runner isolates the record, sinks/runner.py)."""
        from clickhouse_driver.errors import TypeMismatchError

        return (struct.error, OverflowError, TypeMismatchError, *getattr(self.warehouse, "data_errors", ()))

    def reject(self, batch: list[Record]) -> list[tuple[int, str]]:
        """``(index, why)`` of the records ClickHouse (or the warehouse) cannot hold."""
        out = dict(self.warehouse.reject(batch)) if self.warehouse is not None else {}
        for i, rec in enumerate(batch):
            if i not in out:
                why = row_problem(rec)
                if why:
                    out[i] = why
        return sorted(out.items())

    def discard(self) -> None:
        """Forget what was written since the last flush (after a flush that failed)."""
        self._pending.clear()
        if self.warehouse is not None:
            self.warehouse.discard()

    def _insert(self, table: str, columns: tuple[str, ...], rows: list[tuple], token: str) -> None:
        if not rows:
            return
        settings: dict[str, Any] = {}
        if self._dedup_token:
            settings["insert_deduplication_token"] = token
        cols = ", ".join(f"`{c}`" for c in columns)
        self.client.execute(f"INSERT INTO {self.db}.{table} ({cols}) VALUES", rows, settings=settings)

    def flush(self) -> None:
        if not self._pending:
            return
        uniq = {(r[0], r[1], r[2]): r for r in self._pending}
        recs = [uniq[k] for k in sorted(uniq)]
        rows = [_event_row(r, self.codec) for r in recs]  # before the warehouse: a bad value fails here
        if self.warehouse is not None:
            self.warehouse.write(recs)
            self.warehouse.flush()
        token = hashlib.sha1(repr([(k[0], k[1], k[2]) for k in (recs[0][:3], recs[-1][:3])]).encode()).hexdigest()
        self._insert("events", EVENT_COLUMNS, rows, f"events-{token}-{len(rows)}")
        if self.warehouse is not None and self.warehouse.last_refreshed:
            self.publish_derived(self.warehouse, self.warehouse.last_refreshed)
        self._pending.clear()

    # -- derived tables -----------------------------------------------------------------------
    def publish_derived(self, warehouse, periods: list[str], version: int | None = None) -> None:
        """Copy plays/streams/statements of ``periods`` from the DuckDB warehouse, newer version."""
        version = version or time.time_ns()
        con = warehouse.con
        for period in periods:
            plays = con.execute(
                """SELECT period, play_id, user_id, track_id, canon, country, product, context_uri, play_time_ms,
                          day, ms, skipped::UTINYINT, is_stream::UTINYINT FROM plays WHERE period = ?""",
                [period],
            ).fetchall()
            self._insert("plays", PLAY_COLUMNS, [(*r, version) for r in plays], f"plays-{period}-{version}")
            streams = con.execute(
                "SELECT period, play_id, user_id, track_id, country, product, play_time_ms, day, ms FROM streams "
                "WHERE period = ?",
                [period],
            ).fetchall()
            live = {r[1] for r in streams}
            gone = [
                (*r[:9], 0, version)
                for r in self.client.execute(
                    f"SELECT period, play_id, user_id, track_id, country, product, play_time_ms, day, ms "
                    f"FROM {self.db}.streams FINAL WHERE period = %(p)s AND active = 1",
                    {"p": period},
                )
                if r[1] not in live
            ]
            self._insert("streams", STREAM_COLUMNS, [(*r, 1, version) for r in streams] + gone,
                         f"streams-{period}-{version}")
            lines = con.execute(
                "SELECT period, country, product, rightsholder_id, track_id, streams, amount_micros FROM statements "
                "WHERE period = ?",
                [period],
            ).fetchall()
            keys = {r[:5] for r in lines}
            stale = [
                (*r, 0, 0, version)
                for r in self.client.execute(
                    f"SELECT period, country, product, rightsholder_id, track_id FROM {self.db}.statements FINAL "
                    f"WHERE period = %(p)s AND streams > 0",
                    {"p": period},
                )
                if tuple(r) not in keys
            ]
            self._insert("statements", STATEMENT_COLUMNS, [(*r, version) for r in lines] + stale,
                         f"statements-{period}-{version}")

    def close(self) -> None:
        self._pending.clear()
        self.client.disconnect()


def to_date(ms: int) -> date:
    return datetime.fromtimestamp(ms // 1000, tz=UTC).date()
