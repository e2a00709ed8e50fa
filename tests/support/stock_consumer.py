"""A downstream consumer with stock tooling only: confluent-kafka (+ its Avro Schema Registry serde), no
playlog import. Run in a virtualenv of its own by tests/integration/test_registry_consumers.py.

    python stock_consumer.py CONFIG.json OUT.jsonl

CONFIG: ``{"bootstrap": "...", "registry": "http://...", "topics": {"<full topic>": "<content type>"}}``,
the content types of the AsyncAPI document (``playlog topics doc``). Every topic is read from the
beginning to the end offsets seen at start; each record is written to OUT as one JSON line with its
decoded value: Avro (``application/vnd.apache.avro+binary``) through ``AvroDeserializer`` and the
registry, JSON documents with ``json.loads`` (tombstones: null), CSV as text, other bytes as hex.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
import sys
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def plain(value: Any) -> Any:
    """JSON-able: timestamp-millis values (datetimes) as epoch milliseconds."""
    if isinstance(value, dt.datetime):
        return (value - EPOCH) // dt.timedelta(milliseconds=1)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def main(config_path: str, out_path: str) -> int:
    config = json.loads(open(config_path).read())
    registry = SchemaRegistryClient({"url": config["registry"]})
    avro = AvroDeserializer(registry)
    consumer = Consumer({"bootstrap.servers": config["bootstrap"], "group.id": "stock-consumer",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    topics: dict[str, str] = config["topics"]
    ends: dict[tuple[str, int], int] = {}
    assign = []
    md = consumer.list_topics(timeout=30)
    for topic in topics:
        for p in md.topics[topic].partitions:
            lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            if hi > lo:
                ends[(topic, p)] = hi
            assign.append(TopicPartition(topic, p, OFFSET_BEGINNING))
    consumer.assign(assign)
    left = set(ends)
    n = 0
    with open(out_path, "w") as out:
        while left:
            for m in consumer.consume(1000, 1.0):
                if m.error() is not None:
                    raise RuntimeError(m.error().str())
                topic, raw = m.topic(), m.value()
                kind = topics[topic]
                row: dict[str, Any] = {"topic": topic, "partition": m.partition(), "offset": m.offset(),
                                       "key": m.key().decode() if m.key() is not None else None,
                                       "headers": {k: v.decode() for k, v in (m.headers() or [])}}
                if raw is None:
                    row["value"] = None
                elif kind.startswith("application/vnd.apache.avro"):
                    try:  # a record that is not in the wire format (bad input) fails here: say so, go on
                        row["value"] = plain(avro(raw, SerializationContext(topic, MessageField.VALUE)))
                        row["schema_id"] = schema_id = struct.unpack(">bI", raw[:5])[1]
                        writer = json.loads(registry.get_schema(schema_id).schema_str)  # cached by the client
                        row["record"] = f"{writer['namespace']}.{writer['name']}"
                    except Exception as exc:  # noqa: BLE001 - SerializationError, SchemaRegistryError
                        row["error"] = f"{type(exc).__name__}: {exc}"
                elif kind == "application/json":
                    row["value"] = json.loads(raw)
                elif kind.startswith("text/"):
                    row["value"] = raw.decode()
                else:
                    row["value_hex"] = raw.hex()
                out.write(json.dumps(row) + "\n")
                n += 1
                if m.offset() + 1 >= ends.get((topic, m.partition()), 0):
                    left.discard((topic, m.partition()))
    consumer.close()
    print(f"{n} records decoded from {len(topics)} topics", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
