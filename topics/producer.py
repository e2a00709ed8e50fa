"""Producer entry points (see topics/kafka_io.py)."""

from topics.kafka_io import EventProducer, KafkaEventSink, dead_letter

__all__ = ["EventProducer", "KafkaEventSink", "dead_letter"]
