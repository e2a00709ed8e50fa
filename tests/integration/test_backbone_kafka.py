"""The event backbone against a real local Kafka broker (KRaft, from Maven Central jars)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.pii import PII_FIELDS, is_sealed, open_event
from core.settings import load
from schemas.codec import default_codec
from tests.support.events import event_strategy
from topics.admin import create_topics, describe_topics
from topics.consumer import iter_records
from topics.pii_keys import PiiKeyStore
from topics.producer import EventProducer, dead_letter
from topics.topic_catalog import key_of, load_catalog, topic_of

codec = default_codec()
PLAYLOG = [sys.executable, "-m", "playlog.cli"]


def _one_of_each_type() -> list[dict]:
    """One valid event of every type (random content: unicode text, extreme ints, nulls)."""
    import warnings

    warnings.filterwarnings("ignore", message=".*example.*")
    out = []
    for i, t in enumerate(codec.event_types):
        obj = event_strategy(t).example()
        obj["event_id"] = f"e-{i}-{t}"
        if t == "user.erasure_requested":  # its own user: an erasure of a user another event names (random
            obj["user_id"] = f"erased-{i}"  # ids are often equal, e.g. "") shreds that user's sealed fields
        out.append(codec.from_json(obj))
    return out


def _opened(settings, events: list[dict]) -> list[dict]:
    """The consumed events with their personal fields opened by the user's key (core/pii.py), after
    checking that every personal field travelled sealed (never in clear on the topic)."""
    keys = PiiKeyStore(settings)
    for ev in events:
        for f in PII_FIELDS.get(ev["type"], ()):
            assert ev.get(f) is None or is_sealed(ev[f]), (ev["type"], f, ev[f])
    return [open_event(ev, keys.lookup) for ev in events]


def _read_all(settings, names: list[str]) -> list:
    return list(iter_records(settings, names))


def test_topics_create_is_idempotent(kafka_env) -> None:
    first = create_topics(kafka_env)
    assert len(first) == len(load_catalog())
    assert create_topics(kafka_env) == []
    states = describe_topics(kafka_env)
    assert all(s.exists and s.drift == [] for s in states)
    listening = next(s for s in states if s.spec.name == "listening")
    assert listening.partitions == 8 and listening.config["cleanup.policy"] == "delete"
    view = next(s for s in states if s.spec.name == "view.catalog")
    assert view.config["cleanup.policy"] == "compact"


def test_every_event_type_round_trips_through_kafka(kafka_env) -> None:
    create_topics(kafka_env)
    events = _one_of_each_type()
    with_hypothesis = []

    @settings(max_examples=40, suppress_health_check=list(HealthCheck), deadline=None)
    @given(st.sampled_from(codec.event_types).flatmap(event_strategy))
    def collect(obj: dict) -> None:
        with_hypothesis.append(codec.from_json(obj))

    collect()
    for i, ev in enumerate(with_hypothesis):
        ev["event_id"] = f"h-{i}"
        if ev["type"] == "user.erasure_requested":  # its own user (see _one_of_each_type)
            ev["user_id"] = f"erased-h-{i}"
    sent = events + with_hypothesis
    producer = EventProducer(kafka_env)
    for ev in sent:
        producer.produce(ev)
    producer.flush()
    assert producer.delivered == len(sent)
    topics = sorted({kafka_env.topic_prefix + topic_of(e["type"]) for e in sent})
    records = _read_all(kafka_env, topics)
    got = {}
    for r in records:
        ev = codec.decode(r.value)
        got[ev["event_id"]] = ev
        # keyed as events.md says, on the topic of its type
        assert r.key.decode() == key_of(ev)
        assert r.topic == kafka_env.topic_prefix + topic_of(ev["type"])
    assert len(records) == len(sent)
    got = {e["event_id"]: e for e in _opened(kafka_env, list(got.values()))}
    for ev in sent:
        assert got[ev["event_id"]] == ev
    assert {e["type"] for e in got.values()} == set(codec.event_types)


def test_per_user_order_holds(kafka_env) -> None:
    create_topics(kafka_env)
    producer = EventProducer(kafka_env)
    for i in range(300):
        producer.produce(codec.from_json({
            "type": "play.progress", "event_id": f"o{i}", "occurred_at": "2026-05-01T00:00:00Z", "play_id": "p",
            "user_id": f"u{i % 7}", "track_id": "t", "ms_played": i, "country": "DE", "product": "free",
            "context_uri": None}))
    producer.flush()
    seen: dict[str, list[int]] = {}
    for r in _read_all(kafka_env, [kafka_env.topic_prefix + "listening"]):
        ev = codec.decode(r.value)
        seen.setdefault(ev["user_id"], []).append(ev["ms_played"])
    assert len(seen) == 7
    assert all(v == sorted(v) for v in seen.values())


def test_producer_idempotence_is_on(kafka_env) -> None:
    create_topics(kafka_env)
    stats: list[dict] = []
    producer = EventProducer(kafka_env, **{"statistics.interval.ms": 100, "stats_cb": lambda s: stats.append(json.loads(s))})
    assert producer.config["enable.idempotence"] is True and producer.config["acks"] == "all"
    producer.produce(_one_of_each_type()[0])
    producer.flush()
    for _ in range(30):
        producer._producer.poll(0.1)
        if any(s.get("eos", {}).get("idemp_state") == "Assigned" for s in stats):
            break
    eos = [s["eos"] for s in stats if "eos" in s]
    assert eos and eos[-1]["idemp_state"] == "Assigned"
    assert eos[-1]["producer_id"] >= 0  # the broker gave this producer an id: idempotent produce is on


def test_delivery_failure_surfaces(kafka_env) -> None:
    from core.errors import PlaylogError

    producer = EventProducer(kafka_env, **{"message.timeout.ms": 1500})
    producer.produce_raw(kafka_env.topic_prefix + "no-such-topic", b"x", key="k")
    try:
        producer.flush(timeout=10)
    except PlaylogError as exc:
        assert "failed to deliver" in str(exc) or "undelivered" in str(exc)
    else:
        raise AssertionError("a record to a missing topic must not vanish silently")


def test_dead_letter_keeps_bytes_position_and_reason(kafka_env) -> None:
    create_topics(kafka_env)
    producer = EventProducer(kafka_env)
    producer.produce_raw(kafka_env.topic_prefix + "listening", b"\x00garbage", key="u1")
    producer.flush()
    [rec] = _read_all(kafka_env, [kafka_env.topic_prefix + "listening"])
    dead_letter(producer, rec, "Avro body does not decode")
    producer.flush()
    [dl] = _read_all(kafka_env, [kafka_env.topic_prefix + "deadletter"])
    headers = {k: v.decode() for k, v in dl.headers}
    assert dl.value == b"\x00garbage"
    assert headers["source.topic"] == rec.topic
    assert headers["source.offset"] == str(rec.offset)
    assert headers["source.partition"] == str(rec.partition)
    assert headers["reason"] == "Avro body does not decode"


def _cli(args: list[str], env: dict, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(PLAYLOG + args, env={**os.environ, **env}, capture_output=True, text=True, timeout=120, **kw)


def test_produce_reports_exactly_the_bad_lines(kafka_env, tmp_path: Path) -> None:
    create_topics(kafka_env)
    rng = random.Random(7)
    lines = []
    for i in range(1000):
        lines.append(orjson.dumps({
            "type": "play.progress", "event_id": f"g{i}", "occurred_at": "2026-05-01T00:00:00.000Z",
            "play_id": f"p{i}", "user_id": f"u{i % 50}", "track_id": "t1", "ms_played": rng.randint(0, 300000),
            "country": "DE", "product": "premium", "context_uri": None}).decode())
    bad = {
        17: ("{not json", "bad JSON"),
        250: ('{"type": "play.teleported", "event_id": "x", "occurred_at": "2026-05-01T00:00:00Z"}', "unknown event type"),
        499: (lines[499].replace('"user_id":"u49",', ""), "missing field 'user_id'"),
        700: (lines[700].replace('"ms_played":', '"ms_played":-') , "ms_played is negative"),
        999: ('{"type":"track.ingested","event_id":"x","occurred_at":"2026-05-01T00:00:00Z","track_id":"t","isrc":"I",'
              '"title":"T","album_id":"a","artist_ids":[],"duration_ms":1,"genres":[],"explicit":false,"distributor":"d",'
              '"rightsholders":[{"rightsholder_id":"r","share_ppm":999999}]}', "sum to 999999"),
    }
    for idx, (text, _) in bad.items():
        lines[idx] = text
    f = tmp_path / "events.jsonl"
    f.write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if k.startswith("PLAYLOG_")}
    proc = _cli(["produce", str(f)], env)
    assert proc.returncode == 1, proc.stderr
    reported = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"{f}:")]
    assert len(reported) == 5, proc.stderr
    for (idx, (_, reason)), line in zip(sorted(bad.items()), reported, strict=True):
        assert line.startswith(f"{f}:{idx + 1}: ") and reason in line
    assert "995 event(s) produced" in proc.stdout
    got = _read_all(load(), [kafka_env.topic_prefix + "listening"])
    assert len(got) == 995
    ids = {codec.decode(r.value)["event_id"] for r in got}
    assert ids == {f"g{i}" for i in range(1000) if i not in bad}


def test_produce_emit_and_consume_cli(kafka_env, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith("PLAYLOG_")}
    assert _cli(["topics", "create"], env).returncode == 0
    src = tmp_path / "in.jsonl"
    events = [codec.to_json(e) for e in _one_of_each_type()]
    src.write_text("\n".join(orjson.dumps(e).decode() for e in events) + "\n")
    out = tmp_path / "out.jsonl"
    proc = _cli(["produce", str(src), "--emit", str(out)], env)
    assert proc.returncode == 0, proc.stderr
    assert [orjson.loads(x) for x in out.read_text().split("\n") if x] == events
    assert _cli(["produce", str(src)], env).returncode == 0
    proc = _cli(["consume", "users"], env)
    assert proc.returncode == 0, proc.stderr
    consumed = [codec.to_json(e) for e in _opened(kafka_env, [codec.from_json(orjson.loads(x))
                                                              for x in proc.stdout.split("\n") if x])]
    assert sorted(consumed, key=lambda e: e["event_id"]) == sorted(
        (e for e in events if topic_of(e["type"]) == "users"), key=lambda e: e["event_id"])


def test_cli_bad_input_is_one_line_no_traceback(kafka_env, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith("PLAYLOG_")}
    for args in (["produce", str(tmp_path / "missing.jsonl")], ["consume", "no-such-topic"]):
        proc = _cli(args, env)
        assert proc.returncode != 0
        assert "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines()[0].startswith("error:")


def test_broker_restart_keeps_data(tmp_path: Path, monkeypatch) -> None:
    from devstack.kafka import LocalKafka
    from devstack.supervisor import free_server_port

    broker = LocalKafka(tmp_path / "k", port=free_server_port(), controller_port=free_server_port(), heap="384m")
    broker.start(timeout=120)
    try:
        monkeypatch.setenv("PLAYLOG_BOOTSTRAP_SERVERS", broker.bootstrap)
        monkeypatch.setenv("PLAYLOG_TOPIC_PREFIX", "r.")
        s = load()
        create_topics(s)
        sent = _one_of_each_type()
        p = EventProducer(s)
        for ev in sent:
            p.produce(ev)
        p.flush()
        broker.stop()
        assert broker.proc.returncode is not None
        broker.start(timeout=120)
        names = sorted({s.topic_prefix + topic_of(e["type"]) for e in sent})
        got = sorted(_opened(s, [codec.decode(r.value) for r in iter_records(s, names)]),
                     key=lambda e: e["event_id"])
        assert got == sorted(sent, key=lambda e: e["event_id"])
    finally:
        broker.stop()
