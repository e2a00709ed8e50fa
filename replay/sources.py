"""Where replayed events come from: a JSON Lines file, the Parquet archive, or the Kafka topics.

Every source yields in-memory events (plain dicts, timestamps as int epoch ms) and records each
piece of input it could not use in a :class:`SourceReport` (where + reason), so bad input is
listed, never silently skipped. Events whose type the caller does not want are passed over
without validation (they take no part) and only counted.

Validation is the live path's own step (schemas/validate.py): Kafka records go through
``decode_record`` (as the agents, the plays stage and the sinks decode them), JSON Lines through
``parse_json_line`` + ``decode_json``, archive rows through ``check_event``; so a record the live
path dead-letters is listed here with the same reason. Kafka records and archive rows know their
topic: an event of a type that does not belong on it is listed (and not used) whatever its type,
as the live path dead-letters it (``topics.topic_catalog.topic_rule``); JSON Lines carry no topic.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from core.errors import PlaylogError
from core.settings import Settings
from processors.grants import check_client_event
from schemas.codec import Codec, EventError, default_codec
from schemas.validate import check_event, decode_json, decode_record, parse_json_line
from topics.topic_catalog import topic_rule

log = logging.getLogger(__name__)

# archive layout (sinks/archive_schema.py): fixed columns, then one column per event field; an
# event field named like a fixed (non-envelope) column is stored as ev_<name>
ARCHIVE_FIXED = ("topic", "partition", "offset", "key", "type", "event_id", "occurred_at")
_RENAMED = frozenset(ARCHIVE_FIXED) - {"event_id", "occurred_at"}
_PROGRESS_EVERY = 20_000  # lines between progress-bar updates (keeps the bar cheap)


@dataclass
class BadInput:
    where: str  # "line 12", "<file> row 5", "<topic>[<partition>]@<offset>"
    reason: str


@dataclass
class SourceReport:
    """What a source read: events yielded, events of other types passed over, bad input."""

    events: int = 0
    ignored: int = 0
    bad: list[BadInput] = field(default_factory=list)

    def add_bad(self, where: str, reason: str) -> None:
        self.bad.append(BadInput(where, reason))


def _progress(total: int | None, unit: str, desc: str, enabled: bool | None) -> tqdm:
    # enabled None: only when stderr is a terminal
    return tqdm(
        total=total,
        unit=unit,
        unit_scale=True,
        desc=desc,
        file=sys.stderr,
        disable=None if enabled is None else not enabled,
        leave=False,
    )


# -- JSON Lines ---------------------------------------------------------------------------------
def iter_jsonl(
    path: Path,
    report: SourceReport,
    types: frozenset[str] | None = None,
    codec: Codec | None = None,
    progress: bool | None = None,
) -> Iterator[dict]:
    """Events of a JSON Lines file, validated by the codec; line numbers start at 1.

    Blank lines are not events and are passed over. Every other line that is not valid JSON, not
    an object, of an unknown type, or fails the codec's checks is recorded as bad input.
    """
    codec = codec or default_codec()
    known = frozenset(codec.event_types)
    try:
        size = path.stat().st_size
        fh = open(path, "rb")  # noqa: SIM115 - closed below, generator
    except OSError as exc:
        raise PlaylogError(f"cannot read {path}: {exc.strerror or exc}") from None
    bar = _progress(size, "B", f"reading {path.name}", progress)
    pending = 0
    try:
        for lineno, line in enumerate(fh, start=1):
            pending += len(line)
            if lineno % _PROGRESS_EVERY == 0:
                bar.update(pending)
                pending = 0
            if not line.strip():
                continue
            try:
                obj = parse_json_line(line)
                etype = obj.get("type") if isinstance(obj, dict) else None
                if types is not None and etype in known and etype not in types:
                    report.ignored += 1
                    continue
                event = check_client_event(decode_json(codec, obj))
            except EventError as exc:
                report.add_bad(f"line {lineno}", exc.reason)
                continue
            report.events += 1
            yield event
    except OSError as exc:
        raise PlaylogError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        bar.update(pending)
        bar.close()
        fh.close()


# -- Parquet archive ----------------------------------------------------------------------------
def archive_files(root: Path) -> list[Path]:
    """The archive's files: ``<root>/topic=<topic>/date=<YYYY-MM-DD>/*.parquet`` (sorted)."""
    return sorted(root.glob("topic=*/date=*/*.parquet"))


def _field_specs(codec: Codec) -> dict[str, list[tuple[str, str, bool]]]:
    """event type -> [(field, archive column, nullable)] for the fields beyond the envelope."""
    out: dict[str, list[tuple[str, str, bool]]] = {}
    for et in codec.event_types:
        specs = []
        for f in codec.schema_for(et).schema["fields"]:
            name = f["name"]
            if name in ("event_id", "occurred_at"):
                continue
            col = f"ev_{name}" if name in _RENAMED else name
            nullable = isinstance(f["type"], list) and "null" in f["type"]
            specs.append((name, col, nullable))
        out[et] = specs
    return out


def iter_archive(
    root: Path,
    report: SourceReport,
    types: frozenset[str] | None = None,
    codec: Codec | None = None,
    progress: bool | None = None,
    batch_rows: int = 65_536,
) -> Iterator[dict]:
    """Events of a Parquet archive directory, rows turned back into in-memory events.

    Timestamp columns (any unit) become int epoch milliseconds. A row of an unknown type, with a
    required field missing/null, or breaking an invariant, is recorded as bad input
    (``<file> row <n>``).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    codec = codec or default_codec()
    files = archive_files(root)
    if not files:
        raise PlaylogError(
            f"{root}: no Parquet files under topic=<topic>/date=<YYYY-MM-DD>/ (is it the archive?)"
        )
    specs = _field_specs(codec)
    try:
        opened = [(f, pq.ParquetFile(f)) for f in files]
    except (OSError, pa.ArrowException) as exc:
        raise PlaylogError(f"cannot read the archive {root}: {exc}") from None
    total = sum(p.metadata.num_rows for _, p in opened)
    wanted = pa.array(sorted(types)) if types is not None else None
    bar = _progress(total, "rows", f"reading {root.name or root}", progress)
    try:
        for path, pfile in opened:
            rel = path.relative_to(root)
            row_base = 0
            try:
                batches = pfile.iter_batches(batch_size=batch_rows)
                for batch in batches:
                    n = batch.num_rows
                    bar.update(n)
                    yield from _batch_events(batch, rel, row_base, report, specs, wanted, pa, pc, codec)
                    row_base += n
            except pa.ArrowException as exc:
                raise PlaylogError(f"cannot read {path}: {exc}") from None
    finally:
        bar.close()


def _batch_events(batch, rel, row_base, report, specs, wanted, pa, pc, codec) -> Iterator[dict]:  # noqa: ANN001
    names = batch.schema.names
    if "type" not in names or "event_id" not in names or "occurred_at" not in names:
        report.add_bad(f"{rel}", "not an archive file: needs the columns type, event_id, occurred_at")
        return
    # the topic of each row (catalog name): its event types are the ones it may hold
    rules = {}
    if "topic" in names:
        rules = {t: topic_rule(t, "") for t in pc.unique(batch.column("topic")).to_pylist() if t is not None}
    row_index = None
    if wanted is not None:
        types_col = batch.column("type")
        mask = pc.is_in(types_col, value_set=wanted)
        # rows of known types we do not want are ignored; unknown types stay (reported below), and so
        # do rows of a type that does not belong on their topic (listed as the live path refuses them)
        known = pa.array(sorted(specs))
        keep = pc.or_(mask, pc.invert(pc.is_in(types_col, value_set=known)))
        judged = sorted(t for t, (_, allowed) in rules.items() if allowed is not None)
        if judged:
            topic_col = batch.column("topic")
            placed = pa.array(sorted(f"{t}\x1f{et}" for t in judged for et in rules[t][1]), type=pa.string())
            pairs = pc.binary_join_element_wise(topic_col, types_col, "\x1f")
            misplaced = pc.and_(pc.is_in(topic_col, value_set=pa.array(judged, type=pa.string())),
                                pc.invert(pc.is_in(pairs, value_set=placed)))
            keep = pc.or_(keep, misplaced)
        keep = pc.fill_null(keep, True)
        ignored = batch.num_rows - (pc.sum(keep).as_py() or 0)
        report.ignored += ignored
        if ignored:
            row_index = pc.indices_nonzero(keep).to_pylist()
            batch = batch.filter(keep)
    arrays = []
    for col in batch.columns:
        if pa.types.is_timestamp(col.type):
            if col.type.unit != "ms":
                col = pc.cast(col, pa.timestamp("ms", tz=col.type.tz), safe=False)
            col = col.cast(pa.int64())
        arrays.append(col)
    cols = {name: arr.to_pylist() for name, arr in zip(batch.schema.names, arrays, strict=True)}
    types_col, ids, occs = cols["type"], cols["event_id"], cols["occurred_at"]
    topics_col = cols.get("topic")
    for j in range(batch.num_rows):
        rowno = row_base + (row_index[j] if row_index is not None else j)
        et = types_col[j]
        spec = specs.get(et)
        if spec is None:
            report.add_bad(f"{rel} row {rowno}", f"unknown event type {et!r}")
            continue
        if not ids[j] or occs[j] is None:
            report.add_bad(f"{rel} row {rowno}", f"{et}: event_id or occurred_at is missing")
            continue
        event: dict[str, Any] = {"type": et, "event_id": ids[j], "occurred_at": occs[j]}
        for fname, col, nullable in spec:
            values = cols.get(col)
            value = values[j] if values is not None else None
            if value is None and not nullable:
                report.add_bad(f"{rel} row {rowno}", f"{et}: field {fname!r} is missing")
                break
            event[fname] = value
        else:
            rule = rules.get(topics_col[j], (None, None)) if topics_col is not None else (None, None)
            try:
                check_client_event(check_event(event, *rule, codec=codec))
            except EventError as exc:
                report.add_bad(f"{rel} row {rowno}", exc.reason)
                continue
            report.events += 1
            yield event


# -- Kafka --------------------------------------------------------------------------------------
def kafka_topics(settings: Settings, types: Iterable[str]) -> list[str]:
    """Full names of the topics that carry the given event types."""
    from topics.topic_catalog import topic_of

    return sorted({settings.topic_prefix + topic_of(t) for t in types})


def iter_kafka(
    settings: Settings,
    report: SourceReport,
    types: frozenset[str],
    codec: Codec | None = None,
    progress: bool | None = None,
) -> Iterator[dict]:
    """Events of the topics carrying ``types``, each partition read from its beginning to the end
    offset it had when reading began (``topics.consumer.iter_records``, no consumer group)."""
    try:
        from topics.consumer import iter_records
    except ImportError as exc:  # the Kafka client is an optional part of the install
        raise PlaylogError(f"kafka source unavailable: {exc}") from None
    codec = codec or default_codec()
    topics = kafka_topics(settings, types)
    bar = _progress(None, "records", "reading kafka", progress)
    prefix = settings.topic_prefix
    try:
        for rec in iter_records(settings, topics, until_end=True):
            bar.update(1)
            where = f"{rec.topic}[{rec.partition}]@{rec.offset}"
            rule = topic_rule(rec.topic, prefix)
            if rec.value is not None:
                try:
                    etype = codec.event_type_of(rec.value)
                    # passed over: a type not wanted, on its own topic (else decode_record says why not)
                    if etype not in types and (rule[1] is None or etype in rule[1]):
                        report.ignored += 1
                        continue
                except Exception:  # noqa: BLE001 - any failure here is a bad header, decode_record says why
                    pass
            try:
                event = check_client_event(decode_record(codec, rec.value, *rule))
            except EventError as exc:
                report.add_bad(where, exc.reason)
                continue
            report.events += 1
            yield event
    finally:
        bar.close()


# -- choosing a source --------------------------------------------------------------------------
def describe_kind(source: str) -> str:
    """'kafka', 'archive' or 'jsonl' for a --source value; PlaylogError for anything else."""
    if source == "kafka":
        return "kafka"
    p = Path(source)
    if p.is_dir():
        return "archive"
    if p.suffix == ".jsonl":
        if not p.exists():
            raise PlaylogError(f"--source {source}: no such file")
        return "jsonl"
    if not p.exists():
        raise PlaylogError(
            f"--source {source}: no such file or directory (expected 'kafka', an archive directory or a .jsonl file)"
        )
    raise PlaylogError(
        f"--source {source}: unknown source (expected 'kafka', an archive directory or a .jsonl file)"
    )


def open_source(
    source: str,
    report: SourceReport,
    types: frozenset[str],
    settings: Settings | None = None,
    progress: bool | None = None,
) -> Iterator[dict]:
    """The events of a --source value (see :func:`describe_kind`)."""
    kind = describe_kind(source)
    if kind == "kafka":
        from core.settings import load

        return iter_kafka(settings or load(), report, types, progress=progress)
    if kind == "archive":
        return iter_archive(Path(source), report, types, progress=progress)
    return iter_jsonl(Path(source), report, types, progress=progress)
