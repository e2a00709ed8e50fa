"""The event codec: JSON Lines form <-> in-memory event <-> Avro in the Confluent wire format.

In memory an event is a plain ``dict``: ``{"type": "<dotted type>", "event_id": ..., ...}`` with
every timestamp as ``int`` epoch milliseconds (UTC). This is what the pure folds consume.

- ``from_json(obj)`` validates a JSON object (types, required fields, invariants) and returns the
  event, or raises :class:`EventError` with a one-line reason.
- ``to_json(event)`` gives the JSON form back (timestamps as RFC 3339 with milliseconds).
- ``encode(event)`` / ``decode(data)`` are the Kafka value format: magic byte 0, 4-byte big-endian
  schema id, Avro binary body. Any schema version in the registry can be decoded; the record is
  resolved to the latest version of its type (readers upcast old data). Bytes left over after the
  Avro body make a record that does not decode ("N trailing bytes after the Avro body").

Values in range: ``from_json``, ``encode`` and ``decode`` all check every value against its Avro type
(:meth:`Codec.check_values`), so what one of them accepts the others accept too, and the archive
and the warehouse can always hold what the codec let through (ClickHouse's ``DateTime`` is narrower:
its sink refuses the rest, sinks/clickhouse.py). A violation is an :class:`EventError` naming the field
(``"<type>: field 'position_ms' is out of range for int ..."``). The bounds:

| Avro type | bound |
|---|---|
| ``int`` | int32: -2,147,483,648 .. 2,147,483,647 |
| ``long`` | int64: -2^63 .. 2^63 - 1 |
| ``long`` + ``timestamp-millis`` | 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z (what RFC 3339 can show) |
| ``double`` / ``float`` | finite (no NaN, no infinity: the JSON form has neither); ``float`` within float32 |
| ``string``, an id (``event_id``, ``*_id``, items of ``*_ids``) | at most :data:`MAX_ID_CHARS` (256) characters |
| ``string``, any other (names, titles, uris, keys, reasons, codes) | at most :data:`MAX_TEXT_CHARS` (1024) characters |
| ``array`` | at most :data:`MAX_ARRAY_ITEMS` (10,000) items (a play request's queue, a playlist edit) |
| ``enum`` | one of its symbols |

The allowed-string sets that are not Avro enums (product, codec, device type, direction, country
and period formats) are invariants (schemas/invariants.py), checked by ``from_json`` and by every
reader through schemas/validate.py.
"""

from __future__ import annotations

import copy
import io
import math
import struct
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Protocol

import fastavro

from core.timefmt import format_ts, parse_ts
from schemas.invariants import invalid_reason
from schemas.registry import Registry, SchemaVersion

MAGIC = 0
_HEADER = struct.Struct(">bI")
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
TS_MIN, TS_MAX = -62_135_596_800_000, 253_402_300_799_999  # 0001-01-01T00:00:00Z, 9999-12-31T23:59:59.999Z
FLOAT_MAX = 3.4028234663852886e38
MAX_ID_CHARS = 256  # an id: event_id, *_id, and the items of *_ids
MAX_TEXT_CHARS = 1024  # any other string
MAX_ARRAY_ITEMS = 10_000


class EventError(ValueError):
    """An event that cannot be accepted; ``reason`` is a one-line explanation."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _strip_logical(schema: Any) -> Any:
    """A copy of the schema without logical types, so timestamps stay ``int`` millis."""
    if isinstance(schema, dict):
        out = {k: _strip_logical(v) for k, v in schema.items() if k != "logicalType"}
        return out
    if isinstance(schema, list):
        return [_strip_logical(s) for s in schema]
    return schema


def _is_ts(t: Any) -> bool:
    return isinstance(t, dict) and t.get("logicalType") == "timestamp-millis"


def max_chars(field_name: str) -> int:
    """The most characters a string field may hold: ids (``event_id``, ``*_id``, items of ``*_ids``)
    :data:`MAX_ID_CHARS`, every other string :data:`MAX_TEXT_CHARS`."""
    if field_name == "event_id" or field_name.endswith(("_id", "_ids")):
        return MAX_ID_CHARS
    return MAX_TEXT_CHARS


# A value check: (value, path) -> None, raising EventError("field '<path>' ...") on a violation.
ValueCheck = Callable[[Any, str], None]


def _fail(message: str) -> None:
    raise EventError(message)


def _int_check(lo: int, hi: int, what: str) -> ValueCheck:
    def check(v: Any, path: str) -> None:
        if type(v) is not int:
            if not isinstance(v, int) or isinstance(v, bool):
                _fail(f"field {path!r} must be an integer, got {_kind(v)}")
        if not lo <= v <= hi:
            _fail(f"field {path!r} is out of range for {what} ({lo}..{hi}): {v}")

    return check


def _string_check(limit: int) -> ValueCheck:
    def check(v: Any, path: str) -> None:
        if not isinstance(v, str):
            _fail(f"field {path!r} must be a string, got {_kind(v)}")
        if len(v) > limit:
            _fail(f"field {path!r} is too long: {len(v)} characters (at most {limit})")

    return check


def _bool_check(v: Any, path: str) -> None:
    if not isinstance(v, bool):
        _fail(f"field {path!r} must be a boolean, got {_kind(v)}")


def _number_check(limit: float) -> ValueCheck:
    def check(v: Any, path: str) -> None:
        if not isinstance(v, int | float) or isinstance(v, bool):
            _fail(f"field {path!r} must be a number, got {_kind(v)}")
        if isinstance(v, float) and not math.isfinite(v):
            _fail(f"field {path!r} is not a finite number: {v}")
        if abs(v) > limit:
            _fail(f"field {path!r} is out of range for float: {v}")

    return check


def _null_check(v: Any, path: str) -> None:
    if v is not None:
        _fail(f"field {path!r} must be null")


def _bytes_check(v: Any, path: str) -> None:
    if not isinstance(v, bytes | bytearray):
        _fail(f"field {path!r} must be bytes, got {_kind(v)}")


def compile_check(t: Any, name: str) -> ValueCheck:
    """The value check of Avro type ``t`` for a field called ``name`` (see the module doc's bounds)."""
    if isinstance(t, list):
        nullable = "null" in t
        branches = [compile_check(b, name) for b in t if b != "null"]

        def union(v: Any, path: str) -> None:
            if v is None:
                if not nullable:
                    _fail(f"field {path!r} must not be null")
                return
            if not branches:
                _fail(f"field {path!r} must be null")
            first: EventError | None = None
            for branch in branches:
                try:
                    branch(v, path)
                    return
                except EventError as exc:
                    first = first or exc
            raise first  # type: ignore[misc]

        return union
    if isinstance(t, dict):
        if _is_ts(t):
            return _int_check(TS_MIN, TS_MAX, "a timestamp (years 1 to 9999)")
        kind = t["type"]
        if kind == "array":
            item = compile_check(t["items"], name)

            def array(v: Any, path: str) -> None:
                if not isinstance(v, list | tuple):
                    _fail(f"field {path!r} must be an array, got {_kind(v)}")
                if len(v) > MAX_ARRAY_ITEMS:
                    _fail(f"field {path!r} has too many items: {len(v)} (at most {MAX_ARRAY_ITEMS})")
                for i, x in enumerate(v):
                    item(x, f"{path}[{i}]")

            return array
        if kind == "map":
            value = compile_check(t["values"], name)

            def mapping(v: Any, path: str) -> None:
                if not isinstance(v, dict):
                    _fail(f"field {path!r} must be an object, got {_kind(v)}")
                if len(v) > MAX_ARRAY_ITEMS:
                    _fail(f"field {path!r} has too many entries: {len(v)} (at most {MAX_ARRAY_ITEMS})")
                for k, x in v.items():
                    if not isinstance(k, str) or len(k) > MAX_TEXT_CHARS:
                        _fail(f"field {path!r} has a bad key {str(k)[:40]!r}")
                    value(x, f"{path}.{k}")

            return mapping
        if kind == "record":
            return _record_check(t, nested=True)
        if kind == "enum":
            symbols = frozenset(t["symbols"])

            def enum(v: Any, path: str) -> None:
                if v not in symbols:
                    _fail(f"field {path!r}: {str(v)[:40]!r} is not one of {', '.join(sorted(symbols))}")

            return enum
        if kind == "fixed":
            size = t["size"]

            def fixed(v: Any, path: str) -> None:
                _bytes_check(v, path)
                if len(v) != size:
                    _fail(f"field {path!r} must be {size} bytes, got {len(v)}")

            return fixed
        return compile_check(kind, name)
    simple: dict[str, ValueCheck] = {
        "int": _int_check(INT_MIN, INT_MAX, "int"),
        "long": _int_check(LONG_MIN, LONG_MAX, "long"),
        "double": _number_check(math.inf),
        "float": _number_check(FLOAT_MAX),
        "boolean": _bool_check,
        "null": _null_check,
        "bytes": _bytes_check,
    }
    if t == "string":
        return _string_check(max_chars(name))
    if t in simple:
        return simple[t]
    raise ValueError(f"field {name!r}: unsupported Avro type {t!r}")


def _record_check(schema: dict, nested: bool) -> ValueCheck:
    """A record's check: every field present (or with a default, or nullable) and in range.
    Keys beyond the fields are not checked (the top level carries ``type``; the writer ignores them)."""
    fields = []
    for f in schema["fields"]:
        optional = "default" in f or (isinstance(f["type"], list) and "null" in f["type"])
        fields.append((f["name"], compile_check(f["type"], f["name"]), optional))

    def record(v: Any, path: str) -> None:
        if not isinstance(v, dict):
            _fail(f"field {path!r} must be an object, got {_kind(v)}")
        for fname, check, optional in fields:
            where = f"{path}.{fname}" if nested else fname
            if fname not in v:
                if optional:
                    continue
                _fail(f"field {where!r} is missing" if nested else f"missing field {fname!r}")
            check(v[fname], where)

    return record


def _timestamp_fields(schema: dict) -> tuple[str, ...]:
    out = []
    for f in schema["fields"]:
        t = f["type"]
        if _is_ts(t) or (isinstance(t, list) and any(_is_ts(x) for x in t)):
            out.append(f["name"])
    return tuple(out)


class WireIds(Protocol):
    """Where the schema ids on the wire come from when they are not ``registry.json``'s: an external
    Schema Registry (topics/schema_registry.py implements it with confluent-kafka's client)."""

    def id_of(self, version: SchemaVersion) -> int:
        """The id of one of our schema versions there (it must be registered)."""
        ...

    def schema_of(self, schema_id: int) -> dict | None:
        """The schema an id names there (None: no such id)."""
        ...


class Codec:
    """Encode/decode/validate events against a :class:`Registry`.

    With ``ids`` the schema ids on the wire are another registry's (:class:`WireIds`): the ids of our
    latest versions are looked up once, on first use; a record with an id we do not know is read with
    the schema that registry gives for it, resolved to our latest version of its type (found by the
    schema's ``playlog.type``, else its record name)."""

    def __init__(self, registry: Registry | None = None, ids: WireIds | None = None):
        self.registry = registry or Registry.load()
        self._ids = ids
        self._wire: dict[int, int] = {}  # with ids: our version id -> the id on the wire
        self._known: dict[int, tuple[str, Any]] = {}  # with ids: wire id -> (event type, parsed writer)
        self._writers: dict[int, Any] = {}
        self._readers: dict[str, Any] = {}
        self._ts_fields: dict[str, tuple[str, ...]] = {}
        self._field_names: dict[str, frozenset[str]] = {}
        self._checks: dict[str, ValueCheck] = {}
        for v in self.registry.versions:
            # parsed once, marked parsed (fastavro re-parses an unmarked schema on every call: 3x slower)
            self._writers[v.id] = fastavro.parse_schema(_strip_logical(copy.deepcopy(v.schema)))
        for t in self.registry.event_types:
            latest = self.registry.latest(t)
            self._readers[t] = self._writers[latest.id]
            self._ts_fields[t] = _timestamp_fields(latest.schema)
            self._field_names[t] = frozenset(f["name"] for f in latest.schema["fields"])
            self._checks[t] = _record_check(latest.schema, nested=False)

    @property
    def event_types(self) -> list[str]:
        return self.registry.event_types

    # -- JSON form ---------------------------------------------------------------------------
    def from_json(self, obj: Any) -> dict:
        """Validate a JSON object of the interchange form; return the in-memory event."""
        if not isinstance(obj, dict):
            raise EventError(f"expected a JSON object, got {type(obj).__name__}")
        event_type = obj.get("type")
        if not isinstance(event_type, str):
            raise EventError("missing 'type'")
        if event_type not in self.registry:
            raise EventError(f"unknown event type {event_type!r}")
        schema = self.registry.latest(event_type).schema
        unknown = set(obj) - self._field_names[event_type] - {"type"}
        if unknown:
            raise EventError(f"{event_type}: unknown field(s) {', '.join(sorted(unknown))}")
        event: dict[str, Any] = {"type": event_type}
        for field in schema["fields"]:
            name = field["name"]
            if name not in obj:
                if "default" in field:
                    event[name] = copy.deepcopy(field["default"])
                    continue
                raise EventError(f"{event_type}: missing field {name!r}")
            event[name] = _check(field["type"], obj[name], name)
        self.check_values(event)
        reason = invalid_reason(event)
        if reason:
            raise EventError(reason)
        return event

    def to_json(self, event: dict) -> dict:
        """The JSON interchange form of an in-memory event (key order: type, then schema order)."""
        event_type = event["type"]
        out: dict[str, Any] = {"type": event_type}
        ts = self._ts_fields[event_type]
        for name in self.registry.latest(event_type).schema["fields"]:
            n = name["name"]
            v = event.get(n)
            out[n] = format_ts(v) if n in ts and v is not None else v
        return out

    def check_values(self, event: dict) -> dict:
        """The in-memory event if every value is of its field's Avro type and within the bounds of
        the module doc (latest schema of its type); EventError ``"<type>: field '<name>' ..."``."""
        event_type = event.get("type")
        check = self._checks.get(event_type)  # type: ignore[arg-type]
        if check is None:
            raise EventError(f"unknown event type {event_type!r}")
        try:
            check(event, "")
        except EventError as exc:
            raise EventError(f"{event_type}: {exc.reason}") from None
        return event

    # -- wire format -------------------------------------------------------------------------
    def schema_for(self, event_type: str) -> SchemaVersion:
        return self.registry.latest(event_type)

    def encode(self, event: dict) -> bytes:
        """Confluent wire format bytes of an event, with its type's latest schema id; EventError
        (naming the field) for a value not of its type or out of its range (:meth:`check_values`)."""
        try:
            version = self.registry.latest(event["type"])
        except KeyError:
            raise EventError(f"unknown event type {event.get('type')!r}") from None
        self.check_values(event)
        buf = io.BytesIO()
        buf.write(_HEADER.pack(MAGIC, version.id if self._ids is None else self._wire_id(version)))
        try:
            fastavro.schemaless_writer(buf, self._writers[version.id], event)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise EventError(f"{event['type']}: cannot encode: {exc}") from None
        return buf.getvalue()

    def decode(self, data: bytes) -> dict:
        """The event in Confluent wire format bytes; EventError when they are not one of ours: bad
        header, a body that does not decode or leaves trailing bytes, a value out of range."""
        if data is None or len(data) < 5:
            raise EventError("record too short for the wire format (needs magic byte and schema id)")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise EventError(f"unknown magic byte {magic}")
        if self._ids is None:  # the shipped ids (the hot path: no call more than before)
            try:
                version = self.registry.by_id(schema_id)
            except KeyError:
                raise EventError(f"unknown schema id {schema_id}") from None
            event_type, writer = version.event_type, self._writers[schema_id]
        else:
            event_type, writer = self._writer_of(schema_id)
        reader = self._readers[event_type]
        body = io.BytesIO(data)
        body.seek(5)
        try:
            event = fastavro.schemaless_reader(body, writer, None if reader is writer else reader)
        except Exception as exc:  # fastavro raises many kinds on garbage bytes
            raise EventError(f"{event_type}: Avro body does not decode: {exc!r}") from None
        trailing = len(data) - body.tell()
        if trailing:
            raise EventError(f"{event_type}: {trailing} trailing bytes after the Avro body")
        event["type"] = event_type
        return self.check_values(event)

    def event_type_of(self, data: bytes) -> str:
        """The event type of wire-format bytes without decoding the body."""
        try:
            return self._writer_of(_HEADER.unpack_from(data)[1])[0]
        except EventError:
            raise KeyError(_HEADER.unpack_from(data)[1]) from None

    # -- schema ids ----------------------------------------------------------------------------
    def _writer_of(self, schema_id: int) -> tuple[str, Any]:
        """(event type, parsed writer schema) of a wire id; EventError for an id that names none of ours."""
        if self._ids is None:
            try:
                version = self.registry.by_id(schema_id)
            except KeyError:
                raise EventError(f"unknown schema id {schema_id}") from None
            return version.event_type, self._writers[schema_id]
        if not self._wire:
            self._resolve()
        known = self._known.get(schema_id)
        if known is None:
            known = self._known[schema_id] = self._foreign(schema_id)
        return known

    def _wire_id(self, version: SchemaVersion) -> int:
        if not self._wire:
            self._resolve()
        return self._wire[version.id]

    def _resolve(self) -> None:
        """The wire ids of our latest versions, all at once (a registry that lacks one fails here, early)."""
        assert self._ids is not None
        wire = {}
        for t in self.registry.event_types:
            v = self.registry.latest(t)
            wire[v.id] = self._ids.id_of(v)
        for local, remote in wire.items():
            v = self.registry.by_id(local)
            self._known[remote] = (v.event_type, self._writers[local])
        self._wire = wire

    def _foreign(self, schema_id: int) -> tuple[str, Any]:
        assert self._ids is not None
        schema = self._ids.schema_of(schema_id)
        if not isinstance(schema, dict) or schema.get("type") != "record":
            raise EventError(f"unknown schema id {schema_id}")
        event_type = schema.get("playlog.type")
        if event_type not in self.registry:
            name = f"{schema.get('namespace')}.{schema.get('name')}" if "." not in str(schema.get("name")) \
                else str(schema.get("name"))
            names = {self.registry.latest(t).fullname: t for t in self.registry.event_types}
            event_type = names.get(name)
        if event_type is None:
            raise EventError(f"schema id {schema_id} is not one of our event types")
        for v in self.registry.versions:
            if v.event_type == event_type and v.schema == schema:
                return event_type, self._writers[v.id]
        try:
            return event_type, fastavro.parse_schema(_strip_logical(copy.deepcopy(schema)))
        except Exception as exc:  # noqa: BLE001 - whatever fastavro finds wrong with it
            raise EventError(f"schema id {schema_id}: cannot read its schema: {exc}") from None


def _check(t: Any, value: Any, path: str) -> Any:
    """Check a JSON value's shape against an Avro type of our subset; return the in-memory value
    (the bounds are :meth:`Codec.check_values`'s, applied to the whole event next)."""
    if isinstance(t, list):  # union: our schemas only use ["null", X]
        if value is None:
            if "null" in t:
                return None
            raise EventError(f"field {path!r} must not be null")
        for branch in t:
            if branch != "null":
                return _check(branch, value, path)
        raise EventError(f"field {path!r} must be null")
    if isinstance(t, dict):
        if _is_ts(t):
            if value is None:
                raise EventError(f"field {path!r} must not be null")
            try:
                return parse_ts(value)
            except ValueError as exc:
                raise EventError(f"field {path!r}: {exc}") from None
        kind = t["type"]
        if kind == "array":
            if not isinstance(value, list):
                raise EventError(f"field {path!r} must be an array, got {_kind(value)}")
            return [_check(t["items"], v, f"{path}[{i}]") for i, v in enumerate(value)]
        if kind == "record":
            if not isinstance(value, dict):
                raise EventError(f"field {path!r} must be an object, got {_kind(value)}")
            names = {f["name"] for f in t["fields"]}
            extra = set(value) - names
            if extra:
                raise EventError(f"field {path!r} has unknown field(s) {', '.join(sorted(extra))}")
            out = {}
            for f in t["fields"]:
                if f["name"] not in value:
                    raise EventError(f"field {path!r} is missing {f['name']!r}")
                out[f["name"]] = _check(f["type"], value[f["name"]], f"{path}.{f['name']}")
            return out
        return _check(kind, value, path)
    if t == "string":
        if not isinstance(value, str):
            raise EventError(f"field {path!r} must be a string, got {_kind(value)}")
        return value
    if t == "boolean":
        if not isinstance(value, bool):
            raise EventError(f"field {path!r} must be a boolean, got {_kind(value)}")
        return value
    if t in ("int", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise EventError(f"field {path!r} must be an integer, got {_kind(value)}")
        return value  # its range: Codec.check_values
    if t in ("double", "float"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise EventError(f"field {path!r} must be a number, got {_kind(value)}")
        return float(value)
    if t == "null":
        if value is not None:
            raise EventError(f"field {path!r} must be null")
        return None
    raise EventError(f"field {path!r}: unsupported schema type {t!r}")


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


_installed: Codec | None = None


@lru_cache(maxsize=1)
def _shipped_codec() -> Codec:
    return Codec()


def default_codec() -> Codec:
    """This process's codec: the one :func:`install_default_codec` set (a process whose settings name
    an external Schema Registry: topics/schema_registry.py ``configure``), else the codec over the
    registry shipped in `schemas/` with its ids (cached)."""
    return _installed or _shipped_codec()


def install_default_codec(codec: Codec | None) -> None:
    """Make ``codec`` what :func:`default_codec` returns in this process (None: the shipped one again).
    Called once at a process's start, before anything holds a codec."""
    global _installed
    _installed = codec
