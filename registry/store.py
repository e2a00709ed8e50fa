"""Subjects, versions and ids of the schema registry (no HTTP here).

A :class:`SchemaStore` holds entries ``(subject, version, id, schema)``:

- the **seed**: every version of ``schemas/registry.json`` under its subject
  (:mod:`topics.subjects`, TopicRecordNameStrategy with the configured topic prefix) and its stable
  id, the id our producers write. ``empty=True`` starts without it (a registry playing an external
  one, whose ids are its own);
- what was **registered** through the API, persisted in ``store.json`` (written whole, atomically).

As in Confluent's registry an id names one schema: the same schema registered under another subject
gets the id it already has; a new schema gets ``max(id) + 1``; nothing is deleted, no id is reused.
Compatibility is playlog's rule (:func:`schemas.registry.check_type`, what ``playlog schemas check``
applies): the record name is kept, the new schema reads every earlier version's data and readers of
the latest read the new data. Errors are :class:`RegistryError` with Confluent's error codes.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import PlaylogError
from schemas.registry import Registry, check_type
from topics.subjects import subjects

log = logging.getLogger(__name__)

COMPATIBILITY = "FULL"  # what we report: ours is FULL plus backward-transitive (check_type), never laxer
MAX_VERSION = 2**31 - 1


class RegistryError(Exception):
    """An answer of the Confluent error model: HTTP ``status``, ``error_code``, ``message``."""

    def __init__(self, status: int, error_code: int, message: str):
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message


def subject_not_found(subject: str) -> RegistryError:
    return RegistryError(404, 40401, f"Subject '{subject}' not found.")


def schema_not_found(what: str = "Schema not found") -> RegistryError:
    return RegistryError(404, 40403, what)


def invalid_schema(why: str) -> RegistryError:
    return RegistryError(422, 42201, f"Invalid schema: {why}")


@dataclass(frozen=True)
class Entry:
    subject: str
    version: int
    id: int
    schema: dict

    @property
    def schema_str(self) -> str:
        return canonical(self.schema)

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "version": self.version, "id": self.id, "schema": self.schema_str}


def canonical(schema: Any) -> str:
    """The schema string we answer (compact JSON, keys in the schema's own order)."""
    return json.dumps(schema, separators=(",", ":"), ensure_ascii=False)


def fullname(schema: dict) -> str:
    name = str(schema.get("name", ""))
    return name if "." in name or not schema.get("namespace") else f"{schema['namespace']}.{name}"


def parse_schema(body: Any) -> dict:
    """The Avro record schema of a request body ``{"schema": "...", "schemaType": "AVRO"}``;
    :class:`RegistryError` (42201, or 400 for a body that is not an object) otherwise."""
    if not isinstance(body, dict):
        raise RegistryError(400, 400, "the request body must be a JSON object with a 'schema' string")
    schema_type = body.get("schemaType", "AVRO") or "AVRO"
    if schema_type != "AVRO":
        raise invalid_schema(f"schemaType {str(schema_type)[:20]!r} is not supported here (only AVRO)")
    if body.get("references"):
        raise invalid_schema("schema references are not supported here")
    raw = body.get("schema")
    if not isinstance(raw, str) or not raw.strip():
        raise RegistryError(422, 42201, "Empty schema")
    try:
        schema = json.loads(raw)
    except ValueError as exc:
        raise invalid_schema(f"not JSON: {exc}") from None
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise invalid_schema("only Avro records are registered here (one per event type)")
    from avro.errors import AvroException
    from avro.schema import parse

    try:
        parse(raw)
    except (AvroException, ValueError, TypeError, KeyError) as exc:
        raise invalid_schema(str(exc)[:300]) from None
    return schema


def version_number(raw: str, latest: int) -> int:
    """A path's version: a number in 1..2^31-1, ``latest`` or ``-1`` (the latest)."""
    if raw in ("latest", "-1"):
        return latest
    if raw.isdigit() and 1 <= int(raw) <= MAX_VERSION:
        return int(raw)
    raise RegistryError(422, 42202, f"The specified version '{raw[:40]}' is not a valid version id. Allowed "
                                    "values are between [1, 2^31-1] and the string \"latest\"")


class SchemaStore:
    """The registry's entries; ``path`` (a ``store.json``) keeps what is registered through the API."""

    def __init__(self, seed: list[Entry], path: Path | None = None):
        self.path = path
        self._subjects: dict[str, list[Entry]] = {}
        self._by_id: dict[int, dict] = {}
        for e in seed:
            self._add(e)
        self.registered: list[Entry] = []
        if path is not None and path.exists():
            for e in _read(path):
                self._add(e)
                self.registered.append(e)

    @classmethod
    def open(cls, registry: Registry, prefix: str, path: Path | None, *, empty: bool = False) -> SchemaStore:
        seed = [] if empty else [Entry(subject, i, v.id, v.schema)
                                 for subject, versions in subjects(registry, prefix).items()
                                 for i, v in enumerate(versions, start=1)]
        return cls(seed, path)

    def _add(self, e: Entry) -> None:
        known = self._by_id.get(e.id)
        if known is not None and known != e.schema:
            raise PlaylogError(f"schema id {e.id} names two different schemas (subject {e.subject}); "
                               f"{self.path} does not match schemas/registry.json: move it away to start afresh")
        versions = self._subjects.setdefault(e.subject, [])
        if e.version != len(versions) + 1:
            raise PlaylogError(f"{e.subject}: version {e.version} out of order in {self.path}")
        versions.append(e)
        self._by_id[e.id] = e.schema

    # -- reads ---------------------------------------------------------------------------------
    def subjects(self) -> list[str]:
        return sorted(self._subjects)

    def versions(self, subject: str) -> list[Entry]:
        if subject not in self._subjects:
            raise subject_not_found(subject)
        return self._subjects[subject]

    def version(self, subject: str, raw: str) -> Entry:
        versions = self.versions(subject)
        n = version_number(raw, len(versions))
        if n > len(versions):
            raise RegistryError(404, 40402, f"Version {n} not found.")
        return versions[n - 1]

    def by_id(self, schema_id: int) -> dict:
        if schema_id not in self._by_id:
            raise schema_not_found(f"Schema {schema_id} not found")
        return self._by_id[schema_id]

    def uses_of(self, schema_id: int) -> list[Entry]:
        """Every (subject, version) whose schema has this id."""
        self.by_id(schema_id)
        return [e for s in self.subjects() for e in self._subjects[s] if e.id == schema_id]

    @property
    def max_id(self) -> int:
        return max(self._by_id, default=0)

    def lookup(self, subject: str, schema: dict) -> Entry:
        for e in self.versions(subject):
            if e.schema == schema:
                return e
        raise schema_not_found()

    # -- compatibility and registration --------------------------------------------------------
    def problems(self, subject: str, schema: dict, raw_version: str | None = "latest") -> list[str]:
        """What playlog's rule finds wrong with ``schema`` as the next version of ``subject``, checked
        against the versions up to ``raw_version`` (None: all of them)."""
        versions = self.versions(subject)
        upto = len(versions) if raw_version is None else self.version(subject, raw_version).version
        return check_type(subject, [e.schema for e in versions[:upto]], schema)

    def register(self, subject: str, schema: dict) -> Entry:
        """The entry of ``schema`` under ``subject``: the existing one, or a new version (409 when
        incompatible; 42201 when the subject does not end with the record's name)."""
        name = fullname(schema)
        if not subject.endswith(f"-{name}") or len(subject) <= len(name) + 1:
            raise invalid_schema(f"subject '{subject[:200]}' must be '<topic>-{name}' (TopicRecordNameStrategy: "
                                 "the topic, a dash, the record's full name)")
        versions = self._subjects.get(subject, [])
        for e in versions:
            if e.schema == schema:
                return e
        problems = check_type(subject, [e.schema for e in versions], schema) if versions else []
        if problems:
            raise RegistryError(409, 409, "Schema being registered is incompatible with an earlier schema for "
                                          f"subject \"{subject}\": " + "; ".join(problems))
        same = [i for i, s in self._by_id.items() if s == schema]
        entry = Entry(subject, len(versions) + 1, same[0] if same else self.max_id + 1, schema)
        self._add(entry)
        self.registered.append(entry)
        self._save()
        log.info("registered %s version %d as id %d", subject, entry.version, entry.id)
        return entry

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        rows = [{"subject": e.subject, "version": e.version, "id": e.id, "schema": e.schema} for e in self.registered]
        tmp.write_text(json.dumps({"registered": rows}, indent=1) + "\n")
        os.replace(tmp, self.path)


def _read(path: Path) -> list[Entry]:
    try:
        rows = json.loads(path.read_text())["registered"]
        return [Entry(str(r["subject"]), int(r["version"]), int(r["id"]), dict(r["schema"])) for r in rows]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PlaylogError(f"cannot read the registry store {path}: {exc}") from None
