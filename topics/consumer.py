"""Consumer entry points (see topics/kafka_io.py)."""

from topics.kafka_io import Record, commit, consumer_config, end_offsets, iter_batches, iter_records

__all__ = ["Record", "commit", "consumer_config", "end_offsets", "iter_batches", "iter_records"]
