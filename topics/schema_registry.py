"""An external Confluent-compatible Schema Registry (``PLAYLOG_SCHEMA_REGISTRY_URL``: Confluent's,
Karapace, Apicurio's ``/apis/ccompat/v7``, or ``playlog registry``), through confluent-kafka's own
``SchemaRegistryClient`` (which caches every answer).

- :func:`push`: register every version of ``schemas/registry.json`` there, oldest first, under its
  subject (topics/subjects.py, TopicRecordNameStrategy): ``playlog schemas register`` calls it;
- :class:`RegistryIds`: the codec's :class:`schemas.codec.WireIds` over that registry: producers
  write its ids, consumers read them (ids it has that we do not know are fetched and resolved);
- :func:`configure`: called once when a ``playlog`` process starts: with the URL set, this process's
  default codec uses that registry's ids, so everything it produces and consumes agrees with it.

Credentials go in the URL (``https://user:secret@host``, HTTP Basic, as the client reads them); for
``playlog registry`` the secret is an operator token (registry/server.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from core.errors import PlaylogError
from core.settings import Settings
from schemas.codec import Codec, install_default_codec
from schemas.registry import Registry, SchemaVersion
from topics.subjects import subject_of, subjects

log = logging.getLogger(__name__)

NOT_FOUND = (40401, 40402, 40403)


def redact(url: str) -> str:
    """The URL without its credentials, to print."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, f"***@{netloc}", parts.path, parts.query, parts.fragment))


def schema_string(schema: dict) -> str:
    """The string we register and look up (the same one both times, so every registry matches it)."""
    return json.dumps(schema, separators=(",", ":"), ensure_ascii=False)


def client(url: str) -> Any:
    """confluent-kafka's registry client for ``url`` (a comma-separated list is tried in turn)."""
    try:
        from confluent_kafka.schema_registry import SchemaRegistryClient
    except ImportError as exc:
        raise PlaylogError(f"the schema registry client is missing ({exc}); install confluent-kafka[schemaregistry]"
                           " (make setup)") from None
    for name in ("httpx", "httpx2", "httpcore", "httpcore2"):  # their INFO lines print the URL, credentials too
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger(name).level))
    try:
        return SchemaRegistryClient({"url": url, "timeout": 10, "max.retries": 2, "retries.wait.ms": 200})
    except (ValueError, TypeError) as exc:
        raise PlaylogError(f"PLAYLOG_SCHEMA_REGISTRY_URL {redact(url)!r}: {exc}") from None


def _failure(url: str, what: str, exc: Exception) -> PlaylogError:
    code = getattr(exc, "error_code", None)
    detail = getattr(exc, "error_message", None) or str(exc)
    return PlaylogError(f"schema registry at {redact(url)}: {what}: {detail}" + (f" (error {code})" if code else ""))


@dataclass
class RegistryIds:
    """:class:`schemas.codec.WireIds` of the registry at ``url`` for topics under ``prefix``."""

    url: str
    prefix: str
    _client: Any = None

    @property
    def registry_client(self) -> Any:
        if self._client is None:
            self._client = client(self.url)
        return self._client

    def id_of(self, version: SchemaVersion) -> int:
        from confluent_kafka.schema_registry import Schema, SchemaRegistryError

        subject = subject_of(version.event_type, version.fullname, self.prefix)
        try:
            found = self.registry_client.lookup_schema(subject, Schema(schema_string(version.schema), "AVRO"))
        except SchemaRegistryError as exc:
            if exc.error_code in NOT_FOUND:
                raise PlaylogError(f"schema registry at {redact(self.url)} does not have {version.event_type} "
                                   f"version {version.version} under {subject}; run 'playlog schemas register'"
                                   ) from None
            raise _failure(self.url, f"looking up {subject}", exc) from None
        except Exception as exc:  # noqa: BLE001 - httpx transport errors and the like: the registry is down
            raise _failure(self.url, f"looking up {subject}", exc) from None
        return int(found.schema_id)

    def schema_of(self, schema_id: int) -> dict | None:
        from confluent_kafka.schema_registry import SchemaRegistryError

        try:
            schema = self.registry_client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.error_code in NOT_FOUND:
                return None
            raise _failure(self.url, f"fetching schema id {schema_id}", exc) from None
        except Exception as exc:  # noqa: BLE001 - the registry is down: not the record's fault
            raise _failure(self.url, f"fetching schema id {schema_id}", exc) from None
        if schema.schema_type not in (None, "AVRO"):
            return None
        try:
            return json.loads(schema.schema_str)
        except ValueError:
            return None


@dataclass(frozen=True)
class Pushed:
    subject: str
    version: int  # ours (registry.json)
    id: int  # theirs


def push(settings: Settings, registry: Registry) -> list[Pushed]:
    """Register every version of ``registry`` at ``PLAYLOG_SCHEMA_REGISTRY_URL`` (idempotent: a schema
    already there keeps its id). PlaylogError naming the subject when the registry refuses one."""
    from confluent_kafka.schema_registry import Schema

    url = settings.schema_registry_url
    if not url:
        raise PlaylogError("PLAYLOG_SCHEMA_REGISTRY_URL is not set: there is no external registry to push to")
    c = client(url)
    out: list[Pushed] = []
    for subject, versions in sorted(subjects(registry, settings.topic_prefix).items()):
        for v in versions:
            try:
                schema_id = c.register_schema(subject, Schema(schema_string(v.schema), "AVRO"))
            except Exception as exc:  # noqa: BLE001 - SchemaRegistryError (409, 401, ...) or transport
                raise _failure(url, f"registering {subject} ({v.event_type} version {v.version})", exc) from None
            out.append(Pushed(subject, v.version, int(schema_id)))
    return out


def configure(settings: Settings) -> None:
    """With ``PLAYLOG_SCHEMA_REGISTRY_URL`` set, this process's default codec writes and reads that
    registry's ids (looked up on first use); without it, the shipped ids of schemas/registry.json."""
    if not settings.schema_registry_url:
        return
    install_default_codec(Codec(Registry.load(), ids=RegistryIds(settings.schema_registry_url, settings.topic_prefix)))
    log.debug("schema ids from the registry at %s", redact(settings.schema_registry_url))
