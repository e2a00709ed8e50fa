"""Disaster recovery from the archive: ``playlog restore --archive DIR`` rebuilds the source
topics of an empty cluster from the Parquet archive the archive sink wrote.

Every archived record goes back to the topic and partition it came from, with its key, in the
order of its original offsets, so per-key order (and so every fold's input order) is what it
was; the views and the statement rebuilt from the restored topics are those of the original.
Records that were dead-lettered were never archived and are not restored (they took no part in
any view). New offsets may differ from the old ones where the original topic had gaps.

Only an empty cluster is restored into: a target topic that already holds records is refused
(exit 2), so a restore can never interleave old history with new.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click

from core.errors import PlaylogError
from core.settings import Settings
from schemas.codec import EventError, default_codec
from sinks.base import Record

log = logging.getLogger(__name__)


@dataclass
class RestoreReport:
    records: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)
    files: int = 0


def archive_files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).glob("topic=*/date=*/*.parquet") if not p.name.startswith("."))


def read_partitions(root: Path) -> dict[tuple[str, int], list[Record]]:
    """Every archived record, by (topic, partition), in original offset order (one per offset)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sinks.archive_schema import table_to_records

    files = archive_files(root)
    if not files:
        raise PlaylogError(f"{root}: no Parquet files under topic=<topic>/date=<YYYY-MM-DD>/ (is it the archive?)")
    parts: dict[tuple[str, int], dict[int, Record]] = {}
    for path in files:
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise PlaylogError(f"cannot read {path}: {exc}") from None
        for rec in table_to_records(table):
            parts.setdefault((rec[0], rec[1]), {})[rec[2]] = rec  # an offset in two files: the same record
    return {tp: [recs[o] for o in sorted(recs)] for tp, recs in sorted(parts.items())}


def _non_empty(settings: Settings, topics: list[str]) -> dict[str, int]:
    from confluent_kafka import Consumer

    from topics.consumer import consumer_config, end_offsets

    consumer = Consumer(consumer_config(settings, f"{settings.topic_prefix}restore-check"))
    try:
        ends = end_offsets(consumer, [settings.topic_prefix + t for t in topics])
    finally:
        consumer.close()
    held: dict[str, int] = {}
    for (topic, _), (low, high) in ends.items():
        if high > low:
            held[topic] = held.get(topic, 0) + high - low
    return held


def restore(settings: Settings, root: Path, *, progress: bool | None = None) -> RestoreReport:
    """Produce the archive's records back into the (empty) source topics; returns what was restored."""
    from tqdm import tqdm

    from topics.admin import create_topics
    from topics.producer import EventProducer
    from topics.topic_catalog import source_topics

    parts = read_partitions(root)
    known = {t.name: t for t in source_topics()}
    unknown = sorted({t for t, _ in parts if t not in known})
    if unknown:
        raise PlaylogError(f"the archive holds topics that are not source topics: {', '.join(unknown)}")
    create_topics(settings)
    held = _non_empty(settings, sorted({t for t, _ in parts}))
    if held:
        listed = ", ".join(f"{t} ({n} records)" for t, n in sorted(held.items()))
        raise PlaylogError(f"restore writes into an empty cluster only; already holding records: {listed}")
    for (topic, partition) in parts:
        if partition >= known[topic].partitions:
            raise PlaylogError(f"archived partition {topic}[{partition}] does not exist in the topic catalog "
                               f"({known[topic].partitions} partitions)")
    codec = default_codec()
    producer = EventProducer(settings, codec)
    report = RestoreReport(files=len(archive_files(root)))
    total = sum(len(r) for r in parts.values())
    bar = tqdm(total=total, unit="rec", desc="restoring", disable=None if progress is None else not progress)
    try:
        for (topic, partition), records in parts.items():
            for rec in _encoded(records, codec):
                key, value = rec
                producer.produce_raw(settings.topic_prefix + topic, value, key, partition=partition)
                report.records += 1
                report.by_topic[topic] = report.by_topic.get(topic, 0) + 1
            bar.update(len(records))
        producer.flush(120)
    finally:
        bar.close()
    log.info("restored %d records from %d files", report.records, report.files)
    return report


def _encoded(records: list[Record], codec) -> Iterator[tuple[str | None, bytes]]:  # noqa: ANN001
    for topic, partition, offset, key, event in records:
        try:
            yield key, codec.encode(event)
        except EventError as exc:
            raise PlaylogError(f"archived record {topic}[{partition}]@{offset} cannot be encoded: {exc}") from None


@click.command("restore")
@click.option("--archive", "archive", type=click.Path(file_okay=False, exists=True, path_type=Path), required=True,
              help="The Parquet archive directory (what `playlog sink parquet` wrote).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def restore_command(archive: Path, no_progress: bool) -> None:
    """Rebuild the source topics of an empty cluster from the Parquet archive.

    Every record goes back to its topic and partition with its key, in its original offset
    order; then workers rebuild every view and the statement from the restored log. Exit
    status: 0 restored, 2 the archive cannot be read or the cluster is not empty.
    """
    from core.settings import load

    report = restore(load(), archive, progress=False if no_progress else None)
    click.echo(f"restored {report.records} records from {report.files} files: "
               + ", ".join(f"{t} {n}" for t, n in sorted(report.by_topic.items())))
