"""The AsyncAPI document (``playlog topics doc``, the registry's ``/asyncapi.json``): valid AsyncAPI 3.0
(the official JSON Schema, tests/data), and it says what the topic catalog and the schemas say."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from schemas.registry import Registry
from topics.asyncapi import AVRO_FORMAT, document
from topics.topic_catalog import load_catalog

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "asyncapi-3.0.0.schema.json"
PREFIX = "playlog."


@pytest.fixture(scope="module")
def doc() -> dict:
    return document(Registry.load(), PREFIX, bootstrap="127.0.0.1:9092", registry_url="http://127.0.0.1:8702",
                    version="1.0.0")


def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


def test_the_document_is_valid_asyncapi_3(doc: dict) -> None:
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors[:5]]


def test_the_validator_bites() -> None:
    """The same check refuses a broken document (so the test above can fail)."""
    bad = document(Registry.load(), PREFIX, bootstrap="b:1", registry_url="http://r", version="1")
    first = next(iter(bad["channels"].values()))
    first["bindings"]["kafka"]["partitions"] = 0  # the Kafka binding says: at least 1
    bad["operations"]["oops"] = {"action": "publish", "channel": {"$ref": "#/channels/x"}}  # 2.x wording
    assert len(list(_validator().iter_errors(bad))) >= 2


def test_channels_are_the_catalog_topics_with_their_bindings(doc: dict) -> None:
    catalog = load_catalog()
    assert set(doc["channels"]) == {t.name for t in catalog}
    for t in catalog:
        ch = doc["channels"][t.name]
        kafka = ch["bindings"]["kafka"]
        assert ch["address"] == kafka["topic"] == PREFIX + t.name
        assert kafka["partitions"] == t.partitions
        assert kafka["topicConfiguration"]["cleanup.policy"] == [t.cleanup_policy]
        assert kafka["topicConfiguration"]["retention.ms"] == t.retention_ms
        assert doc["operations"][f"receive-{t.name}"]["action"] == "receive"
        for ref in ch["messages"].values():
            message = doc["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]
            assert t.key in message["bindings"]["kafka"]["key"]["description"]
        if t.event_types:
            assert set(ch["messages"]) == set(t.event_types)


def test_messages_carry_the_registered_avro_schemas(doc: dict) -> None:
    reg = Registry.load()
    for t in reg.event_types:
        m = doc["components"]["messages"][t]
        assert m["payload"] == {"schemaFormat": AVRO_FORMAT, "schema": reg.latest(t).schema}
        assert m["bindings"]["kafka"]["schemaIdPayloadEncoding"] == "confluent"
        assert m["bindings"]["kafka"]["schemaLookupStrategy"] == "TopicRecordNameStrategy"
    views = doc["components"]["messages"]
    assert views["view.catalog.value"]["contentType"] == "application/json"
    assert views["view.royalties.value"]["contentType"] == "text/csv"
    assert views["deadletter.value"]["contentType"] == "application/octet-stream"


def test_topics_doc_writes_it(tmp_path: Path) -> None:
    out = tmp_path / "asyncapi.json"
    r = subprocess.run([sys.executable, "-m", "playlog", "topics", "doc", "--out", str(out)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    written = json.loads(out.read_text())
    assert written["asyncapi"] == "3.0.0" and set(written["channels"]) == {t.name for t in load_catalog()}
    assert not list(_validator().iter_errors(written))
