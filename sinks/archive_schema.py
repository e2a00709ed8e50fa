"""The archive's one table layout for every event topic, derived from ``schemas/registry.json``.

Fixed columns first (where the record came from and the envelope), then one nullable column per
distinct field name across every registered schema version, typed by its Avro type:

| Avro | Arrow |
|---|---|
| string | string |
| int | int32 |
| long | int64 |
| boolean | bool |
| double / float | float64 / float32 |
| long + timestamp-millis | timestamp[ms, tz=UTC] |
| array<string> | list<string> |
| array<record> | list<struct<...>> |

A field whose name is one of the fixed columns' and is not the envelope (today only
``player.play_requested.offset``, the queue offset) is stored under ``ev_<name>``
(:data:`RENAMED`), so the Kafka offset keeps the plain ``offset`` column.

Files live at ``<archive>/topic=<topic>/date=<YYYY-MM-DD>/<topic>-<partition>-<first>-<last>.parquet``
(date = UTC date of ``occurred_at``), named by offset range so that a rerun rewrites the same file.

In memory every timestamp is an ``int`` of epoch milliseconds (the codec's convention); the
conversion helpers here keep it that way in both directions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa

from schemas.registry import Registry

TS = pa.timestamp("ms", tz="UTC")
FIXED: tuple[pa.Field, ...] = (
    pa.field("topic", pa.string(), nullable=False),
    pa.field("partition", pa.int32(), nullable=False),
    pa.field("offset", pa.int64(), nullable=False),
    pa.field("key", pa.string(), nullable=True),
    pa.field("type", pa.string(), nullable=False),
    pa.field("event_id", pa.string(), nullable=False),
    pa.field("occurred_at", TS, nullable=False),
)
FIXED_NAMES = frozenset(f.name for f in FIXED)
ENVELOPE = frozenset({"event_id", "occurred_at"})  # event fields that ARE fixed columns
RENAMED_PREFIX = "ev_"


class SchemaConflict(ValueError):
    """Two registered schemas give one field name incompatible types."""


def _arrow_type(t: Any, where: str) -> tuple[pa.DataType, bool]:
    """(Arrow type, is_timestamp) of an Avro type of our subset; unions with null unwrap."""
    if isinstance(t, list):
        branches = [b for b in t if b != "null"]
        if len(branches) != 1:
            raise SchemaConflict(f"{where}: only [\"null\", X] unions are supported, got {t!r}")
        return _arrow_type(branches[0], where)
    if isinstance(t, dict):
        if t.get("logicalType") == "timestamp-millis":
            return TS, True
        kind = t["type"]
        if kind == "array":
            item, _ = _arrow_type(t["items"], f"{where}[]")
            return pa.list_(item), False
        if kind == "record":
            return pa.struct([pa.field(f["name"], _arrow_type(f["type"], f"{where}.{f['name']}")[0]) for f in t["fields"]]), False
        return _arrow_type(kind, where)
    simple = {
        "string": pa.string(),
        "int": pa.int32(),
        "long": pa.int64(),
        "boolean": pa.bool_(),
        "double": pa.float64(),
        "float": pa.float32(),
    }
    if t in simple:
        return simple[t], False
    raise SchemaConflict(f"{where}: unsupported Avro type {t!r}")


def column_name(field_name: str) -> str:
    """The archive column of an event field (``ev_`` prefix only where a fixed column has the name)."""
    if field_name in FIXED_NAMES and field_name not in ENVELOPE:
        return RENAMED_PREFIX + field_name
    return field_name


def derive_schema(registry: Registry) -> pa.Schema:
    """The archive schema of a registry: fixed columns + one column per distinct field name."""
    columns: dict[str, pa.DataType] = {}
    origin: dict[str, str] = {}
    for version in registry.versions:
        for f in version.schema["fields"]:
            name = f["name"]
            if name in ENVELOPE:
                continue
            arrow, _ = _arrow_type(f["type"], f"{version.event_type}.{name}")
            col = column_name(name)
            if col in columns and columns[col] != arrow:
                raise SchemaConflict(
                    f"field {name!r} is {columns[col]} in {origin[col]} but {arrow} in {version.event_type}"
                )
            columns.setdefault(col, arrow)
            origin.setdefault(col, version.event_type)
    return pa.schema(list(FIXED) + [pa.field(n, columns[n], nullable=True) for n in sorted(columns)])


@lru_cache(maxsize=1)
def archive_schema() -> pa.Schema:
    """The archive schema of the registry shipped in ``schemas/`` (cached)."""
    return derive_schema(Registry.load())


@lru_cache(maxsize=1)
def field_columns() -> dict[str, dict[str, str]]:
    """event type -> {event field name: archive column} for the latest schema of each type."""
    reg = Registry.load()
    out: dict[str, dict[str, str]] = {}
    for et in reg.event_types:
        out[et] = {
            f["name"]: column_name(f["name"]) for f in reg.latest(et).schema["fields"] if f["name"] not in ENVELOPE
        }
    return out


@lru_cache(maxsize=1)
def timestamp_columns() -> frozenset[str]:
    return frozenset(f.name for f in archive_schema() if f.type == TS)


# -- rows <-> events --------------------------------------------------------------------------
Record = tuple[str, int, int, "str | None", dict]  # (topic, partition, offset, key, event)


def _row(record: Record, names: list[str], fc: dict[str, dict[str, str]]) -> dict[str, Any]:
    topic, partition, offset, key, event = record
    row = dict.fromkeys(names)
    row["topic"] = topic
    row["partition"] = partition
    row["offset"] = offset
    row["key"] = key
    row["type"] = event["type"]
    row["event_id"] = event["event_id"]
    row["occurred_at"] = event["occurred_at"]
    mapping = fc.get(event["type"], {})
    for fname, value in event.items():
        if fname in ("type", "event_id", "occurred_at"):
            continue
        col = mapping.get(fname, column_name(fname))
        if col in row:
            row[col] = value
    return row


def _array(values: list[Any], f: pa.Field) -> pa.Array:
    if f.type == TS:
        return pa.array(values, type=pa.int64()).cast(TS)
    return pa.array(values, type=f.type)


def records_to_table(records: Iterable[Record], schema: pa.Schema | None = None) -> pa.Table:
    """An Arrow table in the archive layout from ``(topic, partition, offset, key, event)`` records.

    Timestamps stay epoch milliseconds on the way in (Arrow's ``timestamp[ms]`` storage). Raises one
    of :data:`CONVERSION_ERRORS` when a value does not fit its column (see :func:`unwritable`).
    """
    schema = schema or archive_schema()
    names = [f.name for f in schema]
    cols: dict[str, list[Any]] = {name: [] for name in names}
    fc = field_columns()
    for record in records:
        row = _row(record, names, fc)
        for name in names:
            cols[name].append(row[name])
    return pa.Table.from_arrays([_array(cols[f.name], f) for f in schema], schema=schema)


#: what pyarrow raises for a value its column cannot hold (an int beyond int32, a wrong type, ...)
CONVERSION_ERRORS: tuple[type[BaseException], ...] = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError,
                                                      TypeError, ValueError)


def unwritable(records: Sequence[Record], schema: pa.Schema | None = None) -> list[tuple[int, str]]:
    """``(index, why)`` of the records that cannot become archive rows (a value its column cannot
    hold), naming the field. The whole batch is tried first: it costs one conversion when all is well."""
    schema = schema or archive_schema()
    try:
        records_to_table(records, schema)
        return []
    except CONVERSION_ERRORS:
        pass
    names = [f.name for f in schema]
    fc = field_columns()
    out = []
    for i, record in enumerate(records):
        try:
            row = _row(record, names, fc)
        except (KeyError, TypeError, AttributeError) as exc:
            out.append((i, f"not an event: {exc!r}"))
            continue
        for f in schema:
            try:
                _array([row[f.name]], f)
            except CONVERSION_ERRORS as exc:
                out.append((i, f"field {f.name!r}: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}"))
                break
    return out


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS_DELTA = timedelta(milliseconds=1)


def table_to_records(table: pa.Table) -> list[Record]:
    """The inverse of :func:`records_to_table`: events with int-millisecond timestamps."""
    ts = timestamp_columns() | {"occurred_at"}
    # read timestamps as int64 millis to avoid datetime round trips
    cast = table
    for name in table.column_names:
        if name in ts:
            idx = cast.schema.get_field_index(name)
            cast = cast.set_column(idx, name, cast.column(name).cast(pa.int64()))
    rows = cast.to_pylist()
    fc = field_columns()
    out: list[Record] = []
    for row in rows:
        et = row["type"]
        event: dict[str, Any] = {"type": et, "event_id": row["event_id"], "occurred_at": row["occurred_at"]}
        for fname, col in fc.get(et, {}).items():
            event[fname] = row.get(col)
        out.append((row["topic"], row["partition"], row["offset"], row["key"], event))
    return out


def file_path(archive: Path, topic: str, date: str, partition: int, first: int, last: int) -> Path:
    """Where the records of one topic-partition offset range with one event date are stored."""
    return archive / f"topic={topic}" / f"date={date}" / f"{topic}-{partition}-{first}-{last}.parquet"


def utc_date(ms: int) -> str:
    return (_EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%d")


def group_by_file(records: Sequence[Record]) -> dict[tuple[str, int, str], list[Record]]:
    """Records grouped by (topic, partition, UTC date of occurred_at), offset order kept."""
    groups: dict[tuple[str, int, str], list[Record]] = {}
    for rec in records:
        groups.setdefault((rec[0], rec[1], utc_date(rec[4]["occurred_at"])), []).append(rec)
    for recs in groups.values():
        recs.sort(key=lambda r: r[2])
    return groups
