"""The event codec: JSON Lines form <-> in-memory event <-> Avro in the Confluent wire format.

In memory an event is a plain ``dict``: ``{"type": "<dotted type>", "event_id": ..., ...}`` with
every timestamp as ``int`` epoch milliseconds (UTC). This is what the pure folds consume.

- ``from_json(obj)`` validates a JSON object (types, required fields, invariants) and returns the
  event, or raises :class:`EventError` with a one-line reason.
- ``to_json(event)`` gives the JSON form back (timestamps as RFC 3339 with milliseconds).
- ``encode(event)`` / ``decode(data)`` are the Kafka value format: magic byte 0, 4-byte big-endian
  schema id, Avro binary body. Any schema version in the registry can be decoded; the record is
  resolved to the latest version of its type (readers upcast old data).
"""

from __future__ import annotations

import copy
import io
import struct
from functools import lru_cache
from typing import Any

import fastavro

from core.timefmt import format_ts, parse_ts
from schemas.invariants import invalid_reason
from schemas.registry import Registry, SchemaVersion

MAGIC = 0
_HEADER = struct.Struct(">bI")
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


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


def _timestamp_fields(schema: dict) -> tuple[str, ...]:
    out = []
    for f in schema["fields"]:
        t = f["type"]
        if _is_ts(t) or (isinstance(t, list) and any(_is_ts(x) for x in t)):
            out.append(f["name"])
    return tuple(out)


class Codec:
    """Encode/decode/validate events against a :class:`Registry`."""

    def __init__(self, registry: Registry | None = None):
        self.registry = registry or Registry.load()
        self._writers: dict[int, Any] = {}
        self._readers: dict[str, Any] = {}
        self._ts_fields: dict[str, tuple[str, ...]] = {}
        self._field_names: dict[str, frozenset[str]] = {}
        for v in self.registry.versions:
            self._writers[v.id] = fastavro.parse_schema(_strip_logical(copy.deepcopy(v.schema)), _write_hint=False)
        for t in self.registry.event_types:
            latest = self.registry.latest(t)
            self._readers[t] = self._writers[latest.id]
            self._ts_fields[t] = _timestamp_fields(latest.schema)
            self._field_names[t] = frozenset(f["name"] for f in latest.schema["fields"])

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

    # -- wire format -------------------------------------------------------------------------
    def schema_for(self, event_type: str) -> SchemaVersion:
        return self.registry.latest(event_type)

    def encode(self, event: dict) -> bytes:
        """Confluent wire format bytes of a (valid) event, with its type's latest schema id."""
        try:
            version = self.registry.latest(event["type"])
        except KeyError:
            raise EventError(f"unknown event type {event.get('type')!r}") from None
        buf = io.BytesIO()
        buf.write(_HEADER.pack(MAGIC, version.id))
        try:
            fastavro.schemaless_writer(buf, self._writers[version.id], event)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise EventError(f"{event['type']}: cannot encode: {exc}") from None
        return buf.getvalue()

    def decode(self, data: bytes) -> dict:
        """The event in Confluent wire format bytes; EventError when they are not one of ours."""
        if data is None or len(data) < 5:
            raise EventError("record too short for the wire format (needs magic byte and schema id)")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise EventError(f"unknown magic byte {magic}")
        try:
            version = self.registry.by_id(schema_id)
        except KeyError:
            raise EventError(f"unknown schema id {schema_id}") from None
        writer = self._writers[schema_id]
        reader = self._readers[version.event_type]
        try:
            event = fastavro.schemaless_reader(
                io.BytesIO(data[5:]), writer, None if reader is writer else reader
            )
        except Exception as exc:  # fastavro raises many kinds on garbage bytes
            raise EventError(f"{version.event_type}: Avro body does not decode: {exc!r}") from None
        event["type"] = version.event_type
        return event

    def event_type_of(self, data: bytes) -> str:
        """The event type of wire-format bytes without decoding the body."""
        return self.registry.by_id(_HEADER.unpack_from(data)[1]).event_type


def _check(t: Any, value: Any, path: str) -> Any:
    """Check a JSON value against an Avro type of our subset; return the in-memory value."""
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
        lo, hi = (INT_MIN, INT_MAX) if t == "int" else (LONG_MIN, LONG_MAX)
        if not lo <= value <= hi:
            raise EventError(f"field {path!r} is out of range for {t}")
        return value
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


@lru_cache(maxsize=1)
def default_codec() -> Codec:
    """The codec over the registry shipped in `schemas/` (cached)."""
    return Codec()
