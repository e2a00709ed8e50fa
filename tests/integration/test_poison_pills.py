"""Poison pills on the real broker: every sink, the plays stage and the replay account for every record.

Scenario: good records, then records no reader of ours can use, then more good records, all on the
``listening`` topic of a real Kafka broker:
- a ``play.progress`` whose ``ms_played`` is 2^40, written by a bare fastavro writer (an old producer
  or a foreign client, bypassing our codec): it decodes under a lax codec but cannot be written
  (``Int32`` columns); before the fix every sink exited 2 on it ("too large to fit in C integer
  type") and never got past it;
- a valid ``rights.changed`` produced to ``listening`` (not its topic);
- a valid ``play.progress`` followed by two trailing bytes;
- for ClickHouse only: a valid play of 1969, which the codec accepts but ClickHouse's ``DateTime``
  cannot hold.
We expect each sink (a real ``playlog sink ...`` process) to exit 0, write every good record, put
each bad one in ``deadletter`` with its original bytes, its reason and its source
topic/partition/offset headers, and commit its group's offsets past them.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, TopicPartition

from core.timefmt import parse_ts
from processors import batches
from schemas.codec import default_codec
from tests.integration.conftest_clickhouse import clickhouse  # noqa: F401 - the session fixture
from topics.admin import create_topics
from topics.consumer import consumer_config, iter_records
from topics.producer import EventProducer
from topics.topic_catalog import key_of, topic_of

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"  # ../shared/fixtures from the repo
PLAYLOG = [sys.executable, "-m", "playlog.cli"]
T = 1_778_000_000_000  # 2026-05-05
codec = default_codec()


def _play(i: int, **patch) -> dict:  # noqa: ANN003
    return {"type": "play.progress", "event_id": f"pp-{i}", "occurred_at": T + i, "play_id": f"p{i}",
            "user_id": "u1", "track_id": "t1", "ms_played": 31_000 + i, "country": "SE", "product": "free",
            "context_uri": None, **patch}


def raw_wire(event: dict) -> bytes:
    """Wire-format bytes from a bare fastavro writer: none of our codec's checks on the way."""
    version = codec.registry.latest(event["type"])
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, version.id))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(version.schema),
                               {k: v for k, v in event.items() if k != "type"})
    return buf.getvalue()


POISON = {
    "out_of_range": raw_wire(_play(900, ms_played=2**40)),
    "wrong_topic": codec.encode({"type": "rights.changed", "event_id": "rc-1", "occurred_at": T, "track_id": "t1",
                                 "territory": "SE", "allowed": False, "valid_from": None, "valid_to": None}),
    "trailing": codec.encode(_play(901)) + b"\x00\x00",
}
REASON_PARTS = {
    "out_of_range": "play.progress: field 'ms_played' is out of range for int",
    "wrong_topic": "rights.changed: event type does not belong on topic 'listening'",
    "trailing": "play.progress: 2 trailing bytes after the Avro body",
    "before_1970": "clickhouse sink cannot write play.progress: field 'occurred_at'",
}


def _produce(settings, extra: dict[str, bytes] | None = None) -> tuple[set, dict[str, tuple[str, int, int]]]:  # noqa: ANN001
    """Good plays, the poison pills (one partition: they sit between good records), more good plays,
    and a few good events on other topics. Returns the good keys and where each pill went."""
    create_topics(settings)
    producer = EventProducer(settings)
    listening = settings.topic_prefix + "listening"
    pills = {**POISON, **(extra or {})}
    for i in range(12):
        producer.produce_raw(listening, codec.encode(_play(i)), key="u1", partition=0)
    for value in pills.values():
        producer.produce_raw(listening, value, key="u1", partition=0)
    for i in range(12, 30):
        producer.produce_raw(listening, codec.encode(_play(i)), key="u1", partition=0)
    others = [
        {"type": "track.ingested", "event_id": "ti-1", "occurred_at": T - 10, "track_id": "t1", "isrc": "I1",
         "title": "T", "album_id": "al", "artist_ids": ["ar"], "duration_ms": 200_000, "genres": [],
         "explicit": False, "distributor": "d",
         "rightsholders": [{"rightsholder_id": "rhA", "share_ppm": 1_000_000}]},
        {"type": "rights.changed", "event_id": "rc-ok", "occurred_at": T - 10, "track_id": "t1", "territory": "SE",
         "allowed": True, "valid_from": None, "valid_to": None},
    ]
    for e in others:
        producer.produce(e)
    producer.flush()
    names = [settings.topic_prefix + t for t in ("listening", "catalog", "rights")]
    where: dict[str, tuple[str, int, int]] = {}
    good = set()
    for r in iter_records(settings, names):
        key = (r.topic[len(settings.topic_prefix):], r.partition, r.offset)
        name = next((n for n, v in pills.items() if v == r.value), None)
        if name is None:
            good.add(key)
        else:
            where[name] = key
    assert set(where) == set(pills)
    return good, where


def _sink(args: list[str], env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PLAYLOG_SINK_FAULT"}
    env.update(env_extra or {})
    return subprocess.run(PLAYLOG + ["sink", *args, "--topic", "listening", "--topic", "catalog", "--topic", "rights",
                                     "--batch-size", "7"],
                          env=env, capture_output=True, text=True, timeout=300)


def _assert_dead_letters(settings, where: dict[str, tuple[str, int, int]], pills: dict[str, bytes]) -> None:  # noqa: ANN001
    got = {}
    for r in iter_records(settings, [settings.topic_prefix + "deadletter"]):
        h = {k: v.decode() for k, v in r.headers}
        src = (h["source.topic"][len(settings.topic_prefix):], int(h["source.partition"]), int(h["source.offset"]))
        assert r.key == h["source.topic"].encode()
        got[src] = (r.value, h["reason"])
    assert set(got) == set(where.values()), (got, where)
    for name, src in where.items():
        value, reason = got[src]
        assert value == pills[name]
        assert reason.startswith(REASON_PARTS[name]), (name, reason)


def _assert_committed_past(settings, group: str, where: dict[str, tuple[str, int, int]]) -> None:  # noqa: ANN001
    consumer = Consumer(consumer_config(settings, group))
    try:
        last = max(o for _, _, o in where.values())
        (tp,) = consumer.committed([TopicPartition(settings.topic_prefix + "listening", 0)], timeout=30)
        assert tp.offset > last, (tp.offset, last)
    finally:
        consumer.close()


def test_parquet_sink_survives_poison_pills(kafka_env, tmp_path: Path) -> None:
    good, where = _produce(kafka_env)
    archive = tmp_path / "archive"
    proc = _sink(["parquet", "--archive", str(archive)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    t = pa.concat_tables([pq.read_table(f) for f in sorted(archive.rglob("*.parquet"))])
    sunk = list(zip(t["topic"].to_pylist(), t["partition"].to_pylist(), t["offset"].to_pylist(), strict=True))
    assert sorted(sunk) == sorted(good)
    _assert_dead_letters(kafka_env, where, POISON)
    _assert_committed_past(kafka_env, "playlog-sink-parquet", where)
    again = _sink(["parquet", "--archive", str(archive)])  # a rerun has nothing left to do
    assert again.returncode == 0 and "0 records" in again.stdout, again.stdout + again.stderr[-1000:]


def test_duckdb_sink_survives_poison_pills(kafka_env, tmp_path: Path) -> None:
    good, where = _produce(kafka_env)
    wh = tmp_path / "w.duckdb"
    proc = _sink(["duckdb", "--warehouse", str(wh)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    con = duckdb.connect(str(wh), read_only=True)
    try:
        sunk = con.execute('SELECT topic, "partition", "offset" FROM events').fetchall()
        plays = con.execute("SELECT count(*) FROM plays").fetchall()[0][0]
    finally:
        con.close()
    assert sorted(sunk) == sorted(good)
    assert plays == 30  # the derived tables go on too
    _assert_dead_letters(kafka_env, where, POISON)
    _assert_committed_past(kafka_env, "playlog-sink-duckdb", where)


@pytest.mark.clickhouse
def test_clickhouse_sink_survives_poison_pills(kafka_env, tmp_path: Path, clickhouse) -> None:  # noqa: F811
    from clickhouse_driver import Client

    extra = {"before_1970": codec.encode(_play(902, occurred_at=-86_400_000))}
    good, where = _produce(kafka_env, extra)
    db = f"poison_{os.getpid()}_{int(time.time())}"
    url = clickhouse.url.rsplit("/", 1)[0] + "/" + db
    proc = _sink(["clickhouse", "--warehouse", str(tmp_path / "ch.duckdb")], {"PLAYLOG_CLICKHOUSE_URL": url})
    assert proc.returncode == 0, proc.stderr[-2000:]
    client = Client(host="127.0.0.1", port=clickhouse.tcp_port)
    sunk = client.execute(f"SELECT `topic`, `partition`, `offset` FROM {db}.events FINAL")
    assert sorted(sunk) == sorted(good)
    # the warehouse the derived tables come from holds the same records: nothing ClickHouse refused
    assert client.execute(f"SELECT count() FROM {db}.plays FINAL")[0][0] == 30
    _assert_dead_letters(kafka_env, where, {**POISON, **extra})
    _assert_committed_past(kafka_env, "playlog-sink-clickhouse", where)


def test_plays_stage_dead_letters_with_the_sinks_reasons(kafka_env) -> None:  # noqa: ANN001
    from worker import plays_stage

    _, where = _produce(kafka_env)
    stop = threading.Event()
    failed: list[BaseException] = []

    def target() -> None:
        try:
            plays_stage.run(kafka_env, stop, batch=5)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failed.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    dead: list = []
    try:
        while time.monotonic() < deadline and len(dead) < len(where):
            dead = list(iter_records(kafka_env, [kafka_env.topic_prefix + "deadletter"]))
            time.sleep(0.5)
    finally:
        stop.set()
        thread.join(60)
    assert not failed, failed
    _assert_dead_letters(kafka_env, where, POISON)
    _assert_committed_past(kafka_env, plays_stage.group_id(kafka_env), where)
    # the reasons are those of the live step the Faust agents run (decode_batch without a prefix)
    got = {int(dict(r.headers)["source.offset"].decode()): dict(r.headers)["reason"].decode() for r in dead}
    for name, (topic, partition, offset) in where.items():
        _, (d,) = batches.decode_batch(codec, [batches.RawRecord("x." + topic, partition, offset, POISON[name])])
        assert got[offset] == d.reason


def test_replay_from_kafka_reports_a_wrong_topic_event_and_does_not_count_it(kafka_env, tmp_path: Path) -> None:  # noqa: ANN001
    create_topics(kafka_env)
    lines = (FIXTURES / "royalties-sample.jsonl").read_bytes().splitlines()
    events = [codec.from_json(json.loads(line)) for line in lines]
    expected = (FIXTURES / "royalties-sample-2026-05.csv").read_text()
    # a line of the statement the wrong-topic event would remove if it were counted
    _, country, _, _, track, _, _ = expected.splitlines()[1].split(",")
    blocked = {"type": "rights.changed", "event_id": "rc-wrong-topic", "occurred_at": parse_ts("2026-04-25T00:00:00Z"),
               "track_id": track, "territory": country, "allowed": False, "valid_from": None, "valid_to": None}
    with_it = tmp_path / "with.jsonl"
    with_it.write_bytes(b"\n".join([*lines, json.dumps(codec.to_json(blocked)).encode()]) + b"\n")
    counted = subprocess.run(PLAYLOG + ["replay", "royalties", "--period", "2026-05", "--source", str(with_it),
                                        "--out", str(tmp_path / "counted.csv")], capture_output=True, text=True,
                             timeout=300)
    assert counted.returncode == 0, counted.stderr[-2000:]
    assert (tmp_path / "counted.csv").read_text() != expected  # so the check below means something

    producer = EventProducer(kafka_env)
    for e in events:
        producer.produce(e)
    producer.produce_raw(kafka_env.topic_prefix + "listening", codec.encode(blocked), key=key_of(blocked))
    producer.flush()
    assert topic_of(blocked["type"]) == "rights"
    out = tmp_path / "kafka.csv"
    proc = subprocess.run(PLAYLOG + ["replay", "royalties", "--period", "2026-05", "--source", "kafka",
                                     "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr[-2000:]
    bad = [line for line in proc.stderr.splitlines() if line.startswith("bad input: ")]
    assert len(bad) == 1 and f"{kafka_env.topic_prefix}listening[" in bad[0], bad
    assert bad[0].endswith(
        "rights.changed: event type does not belong on topic 'listening' "
        "(it carries play.completed, play.progress, play.skipped, play.started)"), bad
    assert out.read_text() == expected
