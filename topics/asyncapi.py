"""The topics as an API: an AsyncAPI 3.0 document generated from the topic catalog and the Avro schemas.

- one **channel** per catalog topic (address = the full topic name), with its Kafka binding:
  partitions, ``cleanup.policy`` and ``retention.ms`` (and ``max.message.bytes`` where set), and the key;
- one **message** per event type (``components.messages.<type>``): the Avro record schema as payload
  (``application/vnd.apache.avro+json;version=1.9.0``), the schema id in the payload in the Confluent
  wire format, subjects by TopicRecordNameStrategy; the topics that carry no events (views, streams,
  dead letters, the worker's own) get a message saying what their values are: JSON documents, CSV
  text, original bytes, or internal bytes with no contract;
- one ``receive`` **operation** per channel: what a downstream consumer does.

:func:`document` is pure (no broker, no HTTP): ``playlog topics doc`` writes it, the registry
serves it at ``/asyncapi.json``; a test validates it against the AsyncAPI 3.0 JSON Schema.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from schemas.registry import Registry
from topics.subjects import STRATEGY
from topics.topic_catalog import TopicSpec, load_catalog

AVRO_FORMAT = "application/vnd.apache.avro+json;version=1.9.0"
AVRO_CONTENT = "application/vnd.apache.avro+binary"
BINDING = "0.5.0"

# values of the topics that carry no Avro events: (content type, payload schema, description)
_JSON_DOC = {"type": "object"}
_TOMBSTONE = ("A null value (tombstone) deletes the key; compaction keeps only the latest value per key, "
              "and tombstones are kept for delete.retention.ms (24 h by default).")
_INTERNAL = ("application/octet-stream", {"type": "string", "format": "binary"},
             "Internal to the workers (their format can change with any release): not a contract, do not consume.")


def project_version() -> str:
    """The installed playlog's version (the document's ``info.version``)."""
    try:
        return metadata.version("playlog")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _derived_message(t: TopicSpec) -> tuple[str, dict, str]:
    if t.name == "deadletter":
        return ("application/octet-stream", {"type": "string", "format": "binary"},
                "The original bytes of a record that could not be used (often a wire-format Avro event of the "
                "source topic). Headers: reason, source.topic, source.partition, source.offset.")
    if t.name == "view.royalties":
        return ("text/csv", {"type": "string"},
                "The live royalty statement of one period (key), as CSV text (the format of "
                "`playlog royalties`). " + _TOMBSTONE)
    if t.name == "streams":
        return ("application/json", {"type": ["object", "null"]},
                "One qualifying stream per play (key = play_id), a UTF-8 JSON object without the wire-format "
                "header. " + _TOMBSTONE + " A tombstone is sent for a play that is no longer a stream.")
    if t.name.startswith("view."):
        return ("application/json", {"type": ["object", "null"]},
                f"The latest view document per key ({t.key}), a UTF-8 JSON object without the wire-format "
                "header. " + _TOMBSTONE)
    return _INTERNAL


def _channel_id(t: TopicSpec) -> str:
    return t.name.replace("/", "_")


def _binding(t: TopicSpec, prefix: str) -> dict[str, Any]:
    cfg: dict[str, Any] = {"cleanup.policy": [t.cleanup_policy], "retention.ms": t.retention_ms}
    if t.max_message_bytes:
        cfg["max.message.bytes"] = t.max_message_bytes
    return {"topic": prefix + t.name, "partitions": t.partitions, "topicConfiguration": cfg, "bindingVersion": BINDING}


def _key(t: TopicSpec) -> dict[str, Any]:
    return {"type": "string", "description": f"UTF-8 key: {t.key}. Records of one key keep their order "
                                             "(one partition per key)."}


def document(registry: Registry, prefix: str, *, bootstrap: str, registry_url: str, version: str) -> dict:
    """The AsyncAPI 3.0 document of every catalog topic under ``prefix``."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for t in load_catalog():
        cid = _channel_id(t)
        refs: dict[str, Any] = {}
        if t.event_types:
            for et in t.event_types:
                if et not in registry:
                    continue
                v = registry.latest(et)
                messages[et] = {
                    "name": et,
                    "title": v.fullname,
                    "summary": v.schema.get("doc", et),
                    "contentType": AVRO_CONTENT,
                    "payload": {"schemaFormat": AVRO_FORMAT, "schema": v.schema},
                    "bindings": {"kafka": {
                        "key": _key(t), "schemaIdLocation": "payload", "schemaIdPayloadEncoding": "confluent",
                        "schemaLookupStrategy": STRATEGY, "bindingVersion": BINDING,
                    }},
                    "x-playlog-subject": f"{prefix}{t.name}-{v.fullname}",
                }
                refs[et] = {"$ref": f"#/components/messages/{et}"}
        else:
            content, payload, what = _derived_message(t)
            mid = f"{t.name}.value"
            message: dict[str, Any] = {"name": mid, "summary": what, "contentType": content, "payload": payload,
                                       "bindings": {"kafka": {"key": _key(t), "bindingVersion": BINDING}}}
            if t.name == "deadletter":
                message["headers"] = {"type": "object", "properties": {
                    h: {"type": "string"} for h in ("reason", "source.topic", "source.partition", "source.offset")}}
            messages[mid] = message
            refs[mid] = {"$ref": f"#/components/messages/{mid}"}
        channels[cid] = {
            "address": prefix + t.name,
            "title": t.name,
            "description": t.doc,
            "messages": refs,
            "bindings": {"kafka": _binding(t, prefix)},
            "x-playlog-derived": t.derived,
        }
        operations[f"receive-{cid}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{cid}"},
            "summary": f"Consume {prefix}{t.name}",
            "messages": [{"$ref": f"#/channels/{cid}/messages/{m}"} for m in refs],
        }
    return {
        "asyncapi": "3.0.0",
        "id": "urn:playlog:topics",
        "info": {
            "title": "playlog topics",
            "version": version,
            "description": "Every topic of playlog's topic catalog. Source topics carry Avro events in the "
                           "Confluent wire format (magic byte 0, 4-byte schema id, Avro body): decode them with "
                           f"any Schema Registry deserializer pointed at {registry_url}. Derived topics carry JSON, "
                           "CSV or bytes as each channel says.",
        },
        "defaultContentType": AVRO_CONTENT,
        "servers": {
            "kafka": {
                "host": bootstrap.split(",")[0],
                "protocol": "kafka",
                "description": f"Bootstrap servers: {bootstrap}",
                "bindings": {"kafka": {"schemaRegistryUrl": registry_url, "schemaRegistryVendor": "confluent",
                                       "bindingVersion": BINDING}},
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
