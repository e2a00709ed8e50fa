"""A statement (and a royalty shard's tally) outgrows Kafka's default record size (1 MiB) with the
catalog: ``view.royalties`` and ``royalty.tallies`` are created allowing records up to their
``max_message_bytes`` (topics/topic_catalog.json), and the
worker's producer may send them (worker/app.py ``MAX_RECORD_BYTES``); other topics keep the
broker's default and refuse such a record."""

from __future__ import annotations

from confluent_kafka import KafkaError, Producer

from topics.admin import create_topics
from topics.kafka_io import producer_config
from topics.topic_catalog import topic_spec
from worker.app import MAX_RECORD_BYTES


def _send(settings, topic: str, value: bytes) -> KafkaError | None:  # noqa: ANN001
    got: list = []
    p = Producer(producer_config(settings, **{"message.max.bytes": MAX_RECORD_BYTES + 1024}))
    p.produce(settings.topic_prefix + topic, value=value, key=b"2026-05", on_delivery=lambda err, msg: got.append(err))
    assert p.flush(60) == 0
    return got[0]


def test_a_statement_bigger_than_a_mebibyte_is_accepted_where_statements_go(kafka_env) -> None:
    create_topics(kafka_env)
    assert topic_spec("view.royalties").max_message_bytes <= MAX_RECORD_BYTES
    statement = b"period,country,product,rightsholder_id,canonical_track_id,streams,amount_micros\n" * 30_000
    assert len(statement) > 2 * 1024 * 1024
    assert _send(kafka_env, "view.royalties", statement) is None
    assert topic_spec("royalty.tallies").max_message_bytes <= MAX_RECORD_BYTES  # a shard's tally: as big
    assert _send(kafka_env, "royalty.tallies", statement) is None
    err = _send(kafka_env, "view.catalog", statement)
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE
