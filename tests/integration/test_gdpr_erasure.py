"""GDPR erasure end to end on the real broker (issue 15).

A fixture user gets a display name and a device name (sealed at the producer), a playlist and a
starred track; the worker folds everything, the Parquet and DuckDB sinks archive it. The export
before erasure holds every kind of data. After ``user.erasure_requested`` (which shreds the user's
key), the display and device names are found in clear nowhere: not in any topic of the test's prefix
(source, compacted views, the worker's changelogs, pii.keys; raw bytes of keys, values and headers),
not in the worker's RocksDB state dir, not in the Parquet archive, not in DuckDB's ``events`` table;
and the sealed copies that stay there no longer open with any key. The royalty statements replay
byte for byte as the fixture says, before and after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from core import pii
from devstack.workers import WorkerProcess, wait_caught_up
from processors.statement import StatementLine, to_csv
from schemas.codec import default_codec
from tests.support.fixture import expected_statement, fixture_events, produce
from topics.admin import create_topics
from topics.kafka_io import EventProducer, consumer_config, end_offsets
from topics.pii_keys import read_keys

PLAYLOG = [sys.executable, "-m", "playlog.cli"]
NAME = "Quirinus Erasmus-Vanderbeek"
DEVICE = "Quirinus's tangerine tablet"
PERIODS = ("2026-04", "2026-05")


def _all_raw(settings) -> dict[str, list[bytes]]:
    """Every record (key, value, headers as bytes) of every topic of this test's prefix."""
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(settings.topic_prefix)]
    c = Consumer(consumer_config(settings, None))
    out: dict[str, list[bytes]] = {}
    try:
        ends = {tp: hi for tp, (lo, hi) in end_offsets(c, names).items() if hi > lo}
        c.assign([TopicPartition(t, p, 0) for (t, p) in ends])
        pos = {tp: -1 for tp in ends}
        while any(pos[tp] + 1 < hi for tp, hi in ends.items()):
            m = c.poll(1.0)
            if m is None or m.error():
                continue
            pos[(m.topic(), m.partition())] = m.offset()
            blob = (m.key() or b"") + b"\0" + (m.value() or b"") + b"".join(
                k.encode() + (v or b"") for k, v in (m.headers() or []))
            out.setdefault(m.topic(), []).append(blob)
    finally:
        c.close()
    return out


def _export(user: str) -> dict:
    r = subprocess.run(PLAYLOG + ["gdpr", "export", user], env=dict(os.environ), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


def _sink(args: list[str]) -> None:
    r = subprocess.run(PLAYLOG + ["sink", *args], env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def test_erased_names_are_readable_nowhere(kafka_env, tmp_path: Path) -> None:
    create_topics(kafka_env)
    events = fixture_events()
    user = next(e["user_id"] for e in events if e["type"] == "play.completed")
    track = next(e["track_id"] for e in events if e["type"] == "play.completed" and e["user_id"] == user)
    at = 1_777_000_000_000
    mine = [
        {"type": "user.registered", "event_id": "g-r", "occurred_at": at, "user_id": user, "country": "DE",
         "product": "premium", "display_name": NAME},
        {"type": "device.registered", "event_id": "g-d", "occurred_at": at + 1, "user_id": user, "device_id": "tab",
         "device_type": "tablet", "name": DEVICE},
        {"type": "playlist.created", "event_id": "g-p", "occurred_at": at + 2, "playlist_id": "gdpr-pl",
         "owner_id": user, "name": "Erasable mix", "collaborative": False, "public": False},
        {"type": "library.starred", "event_id": "g-s", "occurred_at": at + 3, "user_id": user, "item_type": "track",
         "item_id": track},
    ]
    produce(kafka_env, events + mine)
    worker = WorkerProcess(kafka_env, tmp_path).start()
    try:
        wait_caught_up(kafka_env, [worker])
        for p in PERIODS:
            assert worker.statement(p) == expected_statement(p)

        # the export before erasure holds every kind of data
        doc = _export(user)
        assert doc["profile"]["display_name"] == NAME and doc["profile"]["country"] == "DE"
        assert [d["name"] for d in doc["devices"]] == [DEVICE]
        assert len(doc["plays"]) == sum(1 for e in events if e.get("user_id") == user and e["type"].startswith("play."))
        assert [p["playlist_id"] for p in doc["playlists"]] == ["gdpr-pl"]
        assert len(doc["library"]["items"]) == 1
        assert doc["taste"] and doc["taste"]["signals"] > 0
        sealed_before = read_keys(kafka_env)
        assert any(u == user for u, _ in sealed_before)

        producer = EventProducer(kafka_env)
        producer.produce({"type": "user.erasure_requested", "event_id": "g-x", "occurred_at": at + 10,
                          "user_id": user})
        producer.flush()
        wait_caught_up(kafka_env, [worker])
        for p in PERIODS:  # royalties never depend on personal data
            assert worker.statement(p) == expected_statement(p)
    finally:
        worker.stop()

    archive, wh = tmp_path / "archive", tmp_path / "w.duckdb"
    _sink(["parquet", "--archive", str(archive)])
    _sink(["duckdb", "--warehouse", str(wh)])

    needles = [NAME.encode(), DEVICE.encode(), NAME.encode("utf-16-le")]
    # every topic: the names are not there in clear, their sealed copies are
    raw = _all_raw(kafka_env)
    p = kafka_env.topic_prefix
    assert p + "worker-view_users-changelog" in raw and p + "view.users" in raw and p + "pii.keys" in raw
    for topic, blobs in raw.items():
        for b in blobs:
            assert not any(n in b for n in needles), topic
    sealed = [b for b in raw[p + "users"] if b"pii:v1:" in b]
    assert len(sealed) >= 2
    # the sealed values no longer open: the user's key is gone, no other key opens them
    codec = default_codec()
    values = [codec.decode(b.split(b"\0", 1)[1]) for b in raw[p + "users"]]
    mine_sealed = [(f, e[f]) for e in values if e.get("user_id") == user for f in pii.PII_FIELDS.get(e["type"], ())]
    assert len(mine_sealed) == 2 and all(pii.is_sealed(v) for _, v in mine_sealed)
    keys_now = read_keys(kafka_env)
    assert not any(u == user for u, _ in keys_now)
    for field, value in mine_sealed:
        assert all(pii.open_sealed(k, user, field, value) is None for k in keys_now.values())
        # control: with the key from before the erasure it did open
        kid = pii.kid_of(value)
        assert pii.open_sealed(sealed_before[(user, kid)], user, field, value) in (NAME, DEVICE)

    # the worker's RocksDB state dir
    state_files = [f for f in worker.state_dir.rglob("*") if f.is_file()]
    assert state_files
    for f in state_files:
        assert not any(n in f.read_bytes() for n in needles), f

    # the Parquet archive: file bytes and decoded cells
    files = sorted(archive.rglob("*.parquet"))
    assert files
    for f in files:
        assert not any(n in f.read_bytes() for n in needles), f
        text = json.dumps(pq.read_table(f).to_pylist(), default=str)
        assert NAME not in text and DEVICE not in text, f
    assert any("pii:v1:" in json.dumps(pq.read_table(f).to_pylist(), default=str) for f in files)

    # DuckDB's events table
    con = duckdb.connect(str(wh), read_only=True)
    try:
        rows = con.execute("SELECT * FROM events").fetchall()
        cols = [d[0] for d in con.description]
        text = json.dumps([dict(zip(cols, r, strict=True)) for r in rows], default=str)
        assert rows and NAME not in text and DEVICE not in text
        assert "pii:v1:" in text
        for period in PERIODS:
            got = con.execute("SELECT * FROM statements WHERE period = ? ORDER BY ALL", [period]).fetchall()
            assert to_csv([StatementLine(*r) for r in got]) == expected_statement(period)
    finally:
        con.close()
    assert not any(n in wh.read_bytes() for n in needles)

    # the export after erasure: no names
    after = _export(user)
    assert after["profile"]["display_name"] is None and [d["name"] for d in after["devices"]] == [None]
    assert NAME not in json.dumps(after) and DEVICE not in json.dumps(after)
