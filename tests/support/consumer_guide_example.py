"""The consumer guide's example (README, "Consumer guide"): a downstream service reading playlog's topics
with nothing but confluent-kafka and the schema registry URL. The tests run it in a virtualenv that has
only ``confluent-kafka[avro,schemaregistry]`` (tests/integration/test_registry_consumers.py).

    pip install 'confluent-kafka[avro,schemaregistry]'
    python consumer_guide_example.py BOOTSTRAP REGISTRY_URL [TOPIC_PREFIX]

Prints one JSON line per record of ``listening`` (Avro events) and ``view.users`` (JSON documents),
from the beginning up to the end offsets seen at start.
"""

import datetime
import json
import sys

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError


def main(bootstrap: str, registry_url: str, prefix: str = "playlog.") -> None:
    avro = AvroDeserializer(SchemaRegistryClient({"url": registry_url}))
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "my-service",  # your own group: commit offsets once your effects are durable
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
    })
    topics = [prefix + "listening", prefix + "view.users"]
    ends, assignment = {}, []
    for topic in topics:
        for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[(topic, p)] = high
            assignment.append(TopicPartition(topic, p, OFFSET_BEGINNING))
    consumer.assign(assignment)  # (a service would subscribe() as its group and follow instead)
    while ends:
        for msg in consumer.consume(500, timeout=1.0):
            if msg.error():
                raise SystemExit(msg.error().str())
            topic, key, raw = msg.topic(), msg.key().decode(), msg.value()
            if topic.endswith(".listening"):  # Avro in the Confluent wire format: the registry decodes it
                try:
                    value = avro(raw, SerializationContext(topic, MessageField.VALUE))
                except SerializationError as exc:  # bad input; playlog dead-lettered it too
                    value = {"undecodable": str(exc)}
            else:  # view.*: plain UTF-8 JSON, the latest document per key; None = tombstone (key deleted)
                value = None if raw is None else json.loads(raw)
            print(json.dumps({"topic": topic, "key": key, "value": value},
                             default=lambda t: t.isoformat() if isinstance(t, datetime.datetime) else str(t)))
            if msg.offset() + 1 >= ends.get((topic, msg.partition()), 0):
                ends.pop((topic, msg.partition()), None)
    consumer.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
