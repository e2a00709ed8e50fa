"""The local schema registry: `schemas/avro/*.avsc` plus stable ids in `registry.json`.

Every registered schema version has an id that never changes and is never reused; records on
Kafka carry it in the Confluent wire format. `check()` compares the working `.avsc` files with
the latest registered version of each event type and reports changes that would break readers
of data already written (Avro schema resolution, checked with Apache Avro's own checker).
`register()` appends a new version (new id) for each compatible change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
AVRO_DIR = HERE / "avro"
REGISTRY_PATH = HERE / "registry.json"


@dataclass(frozen=True)
class SchemaVersion:
    id: int
    event_type: str
    version: int
    schema: dict

    @property
    def fullname(self) -> str:
        return f"{self.schema['namespace']}.{self.schema['name']}"


def load_avsc_dir(avro_dir: Path = AVRO_DIR) -> dict[str, dict]:
    """event type -> schema (as JSON) of every `.avsc` in the folder."""
    out: dict[str, dict] = {}
    for path in sorted(avro_dir.glob("*.avsc")):
        schema = json.loads(path.read_text())
        event_type = schema.get("playlog.type")
        if event_type != path.name.removesuffix(".avsc"):
            raise ValueError(f"{path.name}: 'playlog.type' must equal the file name, got {event_type!r}")
        out[event_type] = schema
    return out


class Registry:
    """Schema versions by id and by event type (latest version wins for writing)."""

    def __init__(self, versions: list[SchemaVersion]):
        self.versions = sorted(versions, key=lambda v: v.id)
        self._by_id = {v.id: v for v in self.versions}
        self._latest: dict[str, SchemaVersion] = {}
        for v in self.versions:
            cur = self._latest.get(v.event_type)
            if cur is None or v.version > cur.version:
                self._latest[v.event_type] = v
        if len(self._by_id) != len(self.versions):
            raise ValueError("registry has duplicate schema ids")

    @classmethod
    def load(cls, path: Path = REGISTRY_PATH) -> Registry:
        data = json.loads(Path(path).read_text())
        return cls([SchemaVersion(**row) for row in data["versions"]])

    def save(self, path: Path = REGISTRY_PATH) -> None:
        rows = [
            {"id": v.id, "event_type": v.event_type, "version": v.version, "schema": v.schema}
            for v in self.versions
        ]
        Path(path).write_text(json.dumps({"versions": rows}, indent=1, sort_keys=False) + "\n")

    @property
    def event_types(self) -> list[str]:
        return sorted(self._latest)

    def latest(self, event_type: str) -> SchemaVersion:
        return self._latest[event_type]

    def by_id(self, schema_id: int) -> SchemaVersion:
        return self._by_id[schema_id]

    def __contains__(self, event_type: str) -> bool:
        return event_type in self._latest


def _compatible(reader: dict, writer: dict) -> list[str]:
    """Problems a reader of `reader` schema has reading data written with `writer` (empty = ok)."""
    from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
    from avro.schema import parse

    result = ReaderWriterCompatibilityChecker().get_compatibility(
        parse(json.dumps(reader)), parse(json.dumps(writer))
    )
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    return sorted(f"{m} at {loc}" for m, loc in zip(result.messages, result.locations, strict=False)) or [
        "incompatible"
    ]


def check_type(event_type: str, registered: list[dict], schema: dict) -> list[str]:
    """Problems of a new ``schema`` for ``event_type`` against its ``registered`` versions (oldest
    first; empty = accepted). The rule of :func:`check`: the new schema keeps the record name (it
    carries the type), reads everything written with every earlier version (backward-transitive: a
    new field needs a default), and readers holding the latest version read data written with it
    (forward). The schema registry's compatibility endpoint applies this same rule, per subject."""
    if not registered or schema == registered[-1]:
        return []
    latest, latest_version = registered[-1], len(registered)
    problems: list[str] = []
    name, old_name = _fullname(schema), _fullname(latest)
    if name != old_name:
        problems.append(f"{event_type}: record name changed from {old_name} (it carries the type)")
    for version, old in enumerate(registered, start=1):
        for p in _compatible(schema, old):
            problems.append(f"{event_type}: new schema cannot read version {version} data: {p}")
    for p in _compatible(latest, schema):
        problems.append(f"{event_type}: readers of version {latest_version} cannot read new data: {p}")
    return problems


def _fullname(schema: dict) -> str:
    name = str(schema.get("name"))
    return name if "." in name or not schema.get("namespace") else f"{schema['namespace']}.{name}"


def check(registry: Registry, working: dict[str, dict]) -> list[str]:
    """Problems of the working schemas against every registered version (empty = all good).

    A change is accepted when the new schema can read everything written with every earlier
    version of that type (backward-transitive, e.g. a new field needs a default) and readers
    still holding the latest registered version can read data written with the new one (forward)
    (:func:`check_type`). Removing an event type is a break too.
    """
    problems: list[str] = []
    for event_type in registry.event_types:
        if event_type not in working:
            problems.append(f"{event_type}: schema removed (data already written would be unreadable)")
    for event_type, schema in sorted(working.items()):
        if event_type not in registry:
            continue
        registered = sorted((v for v in registry.versions if v.event_type == event_type), key=lambda v: v.version)
        problems += check_type(event_type, [v.schema for v in registered], schema)
    return problems


def register(registry: Registry, working: dict[str, dict]) -> tuple[Registry, list[SchemaVersion]]:
    """A registry with a new version for every changed or new type (call `check` first)."""
    next_id = max((v.id for v in registry.versions), default=0) + 1
    added: list[SchemaVersion] = []
    for event_type, schema in sorted(working.items()):
        if event_type in registry and registry.latest(event_type).schema == schema:
            continue
        version = registry.latest(event_type).version + 1 if event_type in registry else 1
        added.append(SchemaVersion(id=next_id, event_type=event_type, version=version, schema=schema))
        next_id += 1
    return Registry(registry.versions + added), added
