"""The codec with another registry's ids (schemas.codec.WireIds): what an external Schema Registry gives."""

from __future__ import annotations

import copy
import io

import fastavro
import pytest

from schemas.codec import Codec, EventError, default_codec
from schemas.registry import Registry, SchemaVersion

PLAY = {"type": "play.progress", "event_id": "e1", "occurred_at": "2026-05-01T00:00:00Z", "play_id": "p",
        "user_id": "u", "track_id": "t", "ms_played": 5, "country": "DE", "product": "free", "context_uri": None}


class FakeIds:
    """Ids 1000 + ours; plus whatever extra schemas the test puts there."""

    def __init__(self) -> None:
        self.extra: dict[int, dict] = {}
        self.lookups = 0

    def id_of(self, version: SchemaVersion) -> int:
        self.lookups += 1
        return 1000 + version.id

    def schema_of(self, schema_id: int) -> dict | None:
        if schema_id in self.extra:
            return self.extra[schema_id]
        if schema_id > 1000:
            return Registry.load().by_id(schema_id - 1000).schema
        return None


def _wire(schema_id: int, schema: dict, record: dict) -> bytes:
    buf = io.BytesIO()
    buf.write(b"\0" + schema_id.to_bytes(4, "big"))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(copy.deepcopy(schema)), record)
    return buf.getvalue()


def test_encode_writes_their_ids_and_decode_reads_them() -> None:
    ids = FakeIds()
    codec = Codec(Registry.load(), ids=ids)
    event = codec.from_json(PLAY)
    wire = codec.encode(event)
    ours = Registry.load().latest("play.progress").id
    assert int.from_bytes(wire[1:5], "big") == 1000 + ours
    assert codec.decode(wire) == event
    assert codec.event_type_of(wire) == "play.progress"
    lookups = ids.lookups
    assert lookups == len(Registry.load().event_types)  # every latest looked up once, then cached
    codec.encode(event)
    assert ids.lookups == lookups
    with pytest.raises(EventError, match="unknown schema id"):
        codec.decode(default_codec().encode(event))  # our shipped id means nothing there


def test_an_id_only_they_know_is_read_with_their_schema_and_resolved_to_ours() -> None:
    ids = FakeIds()
    codec = Codec(Registry.load(), ids=ids)
    newer = copy.deepcopy(Registry.load().latest("play.progress").schema)
    newer["fields"].append({"name": "bitrate", "type": ["null", "int"], "default": None})
    newer.pop("playlog.type")  # found by its record name then
    ids.extra[5] = newer
    event = default_codec().from_json(PLAY)
    record = {**event, "bitrate": 96}
    got = codec.decode(_wire(5, newer, record))
    assert got == event  # the field we do not know is dropped (Avro resolution), the rest is the event
    ids.extra[6] = {"type": "record", "name": "Other", "namespace": "com.example", "fields": []}
    with pytest.raises(EventError, match="not one of our event types"):
        codec.decode(b"\0\0\0\0\x06")
    with pytest.raises(EventError, match="unknown schema id 7"):
        codec.decode(b"\0\0\0\0\x07")
