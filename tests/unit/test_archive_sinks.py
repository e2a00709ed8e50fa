"""Archive schema derived from the registry; Parquet and DuckDB sinks idempotent on rerun; the
runner commits only after flush and dead-letters bad records."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from processors.statement import StatementLine, to_csv
from replay.sql_engine import compute
from schemas.codec import default_codec
from schemas.registry import Registry
from sinks.archive_schema import (
    TS,
    SchemaConflict,
    archive_schema,
    derive_schema,
    records_to_table,
    table_to_records,
)
from sinks.duckdb_sink import DuckDBWarehouse
from sinks.parquet import ParquetArchive, archive_files
from sinks.runner import run_batches
from topics.topic_catalog import key_of, topic_of

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"


@pytest.fixture(scope="module")
def records() -> list[tuple]:
    codec = default_codec()
    offs: dict[tuple[str, int], int] = {}
    out = []
    for line in (FIXTURES / "royalties-sample.jsonl").read_bytes().splitlines():
        ev = codec.from_json(json.loads(line))
        topic, key = topic_of(ev["type"]), key_of(ev)
        part = sum(key.encode()) % 3
        off = offs.get((topic, part), 0)
        offs[(topic, part)] = off + 1
        out.append((topic, part, off, key, ev))
    return out


def test_schema_has_fixed_columns_then_every_field_typed_from_the_registry() -> None:
    schema = archive_schema()
    assert schema.names[:7] == ["topic", "partition", "offset", "key", "type", "event_id", "occurred_at"]
    assert schema.field("offset").type == pa.int64() and schema.field("occurred_at").type == TS
    assert schema.field("ev_offset").type == pa.int32()  # player.play_requested.offset, renamed
    assert schema.field("ms_played").type == pa.int32()
    assert schema.field("amount_micros").type == pa.int64()
    assert schema.field("valid_from").type == TS
    assert schema.field("territories").type == pa.list_(pa.string())
    rs = schema.field("rightsholders").type
    assert pa.types.is_list(rs) and rs.value_type.field("share_ppm").type == pa.int32()
    reg = Registry.load()
    names = {f["name"] for v in reg.versions for f in v.schema["fields"]} - {"event_id", "occurred_at", "offset"}
    assert names <= set(schema.names)


def test_conflicting_field_types_are_refused() -> None:
    reg = Registry.load()
    v = reg.versions[0]
    bad = dict(v.schema, fields=[*v.schema["fields"], {"name": "ms_played", "type": "string"}])
    with pytest.raises(SchemaConflict, match="ms_played"):
        derive_schema(Registry([*reg.versions, type(v)(id=999, event_type=v.event_type, version=99, schema=bad)]))


def test_records_round_trip_through_arrow(records) -> None:
    sample = records[:300]
    assert table_to_records(records_to_table(sample)) == [
        (t, p, o, k, {f: ev.get(f) for f in ev}) for t, p, o, k, ev in sample
    ]


def _keys(root: Path) -> list[tuple]:
    t = pa.concat_tables([pq.read_table(f) for f in archive_files(root)])
    return sorted(zip(t["topic"].to_pylist(), t["partition"].to_pylist(), t["offset"].to_pylist(), strict=True))


def test_parquet_rerun_with_other_batch_boundaries_leaves_no_duplicate_and_no_gap(records, tmp_path: Path) -> None:
    # offsets mostly follow event time, as on a live topic (offline uploads arrive late)
    records = sorted(records, key=lambda r: (r[4]["occurred_at"] // 3_600_000, r[4]["event_id"]))
    offsets: dict = {}
    records = [(t, p, offsets.setdefault((t, p), iter(range(10**6))).__next__(), k, ev) for t, p, _, k, ev in records]
    sink = ParquetArchive(tmp_path)
    for size in (1500, 2200):  # first run, then two replays with different batch boundaries
        for i in range(0, len(records), size):
            sink.write(records[i : i + size])
            sink.flush()
        assert _keys(tmp_path) == sorted((t, p, o) for t, p, o, _, _ in records)
    for f in archive_files(tmp_path):
        topic, date = f.parent.parent.name.removeprefix("topic="), f.parent.name.removeprefix("date=")
        occurred = pq.read_table(f)["occurred_at"].cast(pa.int64()).to_pylist()
        assert f.name.startswith(f"{topic}-") and all(
            __import__("sinks.archive_schema").archive_schema.utc_date(ms) == date for ms in occurred
        )
    for period in ("2026-04", "2026-05"):
        expected = (FIXTURES / f"royalties-sample-{period}.csv").read_text()
        assert to_csv(compute(tmp_path, period).lines) == expected


def test_parquet_shorter_rerun_keeps_the_tail_of_an_older_file(records, tmp_path: Path) -> None:
    same = [r for r in records if (r[0], r[1]) == ("listening", 0)][:200]
    sink = ParquetArchive(tmp_path)
    sink.write(same)
    sink.flush()
    sink.write(same[:50])  # a re-delivery that stops earlier than the first write did
    sink.flush()
    assert _keys(tmp_path) == sorted((t, p, o) for t, p, o, _, _ in same)


def test_duckdb_warehouse_is_idempotent_and_derives_the_statements(records, tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    shuffled = list(records)
    random.Random(3).shuffle(shuffled)
    for size in (2500, 4000):
        for i in range(0, len(shuffled), size):
            wh.write(shuffled[i : i + size])
            wh.flush()
    assert wh.con.execute("SELECT count(*), count(DISTINCT (topic, \"partition\", \"offset\")) FROM events").fetchall() == [
        (len(records), len(records))
    ]
    for period in ("2026-04", "2026-05"):
        expected = (FIXTURES / f"royalties-sample-{period}.csv").read_text()
        assert to_csv([StatementLine(*r) for r in wh.statement(period)]) == expected
    n_streams = wh.con.execute("SELECT count(*) FROM streams").fetchall()[0][0]
    assert n_streams == wh.con.execute("SELECT count(*) FROM plays WHERE is_stream").fetchall()[0][0] > 0
    wh.close()


class FakeRaw:
    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None):
        self.topic, self.partition, self.offset, self.key, self.value = topic, partition, offset, key, value


class RecordingSink:
    name = "rec"

    def __init__(self, log: list):
        self.log, self.pending, self.durable = log, [], []

    def write(self, batch):
        self.pending += batch

    def flush(self):
        self.durable += self.pending
        self.log.append(("flush", len(self.pending)))
        self.pending = []

    def close(self):
        pass


def test_runner_dead_letters_bad_records_and_commits_after_flush(records) -> None:
    codec = default_codec()
    raws = [FakeRaw("pfx." + t, p, o, k.encode(), codec.encode(ev)) for t, p, o, k, ev in records[:40]]
    raws.insert(5, FakeRaw("pfx.listening", 7, 999, None, b"\x00\x00\x00\x00\x01garbage"))
    raws.insert(9, FakeRaw("pfx.listening", 7, 1000, None, b"xx"))
    log: list = []
    sink = RecordingSink(log)
    dead: list = []
    stats = run_batches(
        sink, iter([raws[:20], raws[20:]]),
        commit=lambda b: log.append(("commit", len(b))),
        dead_letter=lambda raw, reason: dead.append((raw.offset, reason)),
        flush_dead_letters=lambda: log.append(("dlq-flush",)),
        prefix="pfx.",
    )
    assert [d[0] for d in dead] == [999, 1000] and all(d[1] for d in dead)
    assert log == [("flush", 18), ("dlq-flush",), ("commit", 20), ("flush", 22), ("dlq-flush",), ("commit", 22)]
    assert [(r[0], r[2]) for r in sink.durable] == [(t, o) for t, _, o, _, _ in records[:40]]
    assert stats.dead_lettered == 2 and stats.written == 40
