"""Downstream consumers with stock tooling decode every topic, through a registry playing the external one.

Scenario: ``playlog registry --empty`` plays a production registry (Confluent's, Karapace, ...): its
ids are its own, and a foreign schema registered first shifts them off ours. ``playlog schemas
register`` pushes our schemas there (operator token in the URL). Every producer and consumer of the
project then runs with PLAYLOG_SCHEMA_REGISTRY_URL: events are produced in-process and by ``playlog
produce``, a worker (and its plays stage) folds them, ``playlog consume`` reads them back. A script
in a virtualenv of its own with only ``confluent-kafka[avro,schemaregistry]`` (no playlog import)
consumes every topic of the catalog from the start with ``AvroDeserializer(SchemaRegistryClient(...))``
and the content types of the AsyncAPI document.

We expect: the records carry the external registry's ids (none of ours); every source record decodes
to exactly the event produced, in produce order per key (the one non-Avro record we wrote fails to
decode and is in ``deadletter`` with its original bytes); the streams are the oracle's
(tests/unit/test_royalties_props.py, the literal reading of spec/royalties.md), the statements in
``view.royalties`` are the shared fixture's CSVs, the view documents are what the folds give.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from core.pii import PII_FIELDS, is_sealed, open_event, read_field
from devstack.supervisor import Child, free_port
from devstack.workers import WorkerProcess, wait_caught_up
from playback import auth
from schemas.codec import Codec, default_codec
from schemas.registry import Registry
from tests.support.fixture import PERIODS, expected_statement, fixture_events, produce
from tests.support.playback_procs import PLAYLOG, http, tail, view_docs, wait_until
from tests.support.stock_venv import stock_python
from tests.unit.test_royalties_props import oracle_streams
from topics.admin import create_topics
from topics.asyncapi import document
from topics.pii_keys import PiiKeyStore
from topics.producer import EventProducer
from topics.schema_registry import RegistryIds
from topics.topic_catalog import key_of, load_catalog, topic_of

CONSUMER = Path(__file__).resolve().parents[1] / "support" / "stock_consumer.py"
GUIDE = Path(__file__).resolve().parents[1] / "support" / "consumer_guide_example.py"  # README's example

EXTRA = [
    {"type": "user.registered", "event_id": "sc-u1", "occurred_at": "2026-05-01T00:00:00Z", "user_id": "u001",
     "country": "DE", "product": "premium", "display_name": "Ada"},
    {"type": "device.registered", "event_id": "sc-u2", "occurred_at": "2026-05-01T00:00:01Z", "user_id": "u001",
     "device_id": "d1", "device_type": "phone", "name": "Ada's phone"},
    {"type": "player.play_requested", "event_id": "sc-p1", "occurred_at": "2026-05-01T00:00:02Z", "user_id": "u001",
     "device_id": "d1", "track_ids": ["t001", "t002"], "context_uri": None, "offset": 0, "position_ms": 0},
    {"type": "player.paused", "event_id": "sc-p2", "occurred_at": "2026-05-01T00:00:03Z", "user_id": "u001",
     "device_id": "d1", "position_ms": 1500},
    {"type": "playlist.created", "event_id": "sc-l1", "occurred_at": "2026-05-01T00:00:00Z", "playlist_id": "pl1",
     "owner_id": "u001", "name": "Mix", "collaborative": False, "public": True},
    {"type": "playlist.tracks_added", "event_id": "sc-l2", "occurred_at": "2026-05-01T00:00:01Z",
     "playlist_id": "pl1", "user_id": "u001", "track_ids": ["t001", "t002"], "position": None},
]
FOREIGN = {"type": "record", "name": "Reading", "namespace": "com.example.meters",
           "fields": [{"name": "value", "type": "double"}]}


def _registry(tmp_path: Path, settings, port: int) -> Child:
    env = {**settings.to_env(), "PLAYLOG_REGISTRY_PORT": str(port)}
    child = Child("registry", [PLAYLOG, "registry", "--empty"], env, tmp_path / "registry.log").start()

    def up() -> bool:
        assert child.alive(), tail(child.log)
        try:
            return http("GET", port, "/healthz", timeout=2)[0] == 200
        except OSError:
            return False

    wait_until("the registry", up, 60, on_timeout=lambda: tail(child.log))
    return child


def _opened_user_view(doc: dict | None, lookup) -> dict | None:
    """A ``view.users`` document with its sealed names opened (the view keeps them sealed, core/pii.py)."""
    if doc is None:
        return None
    uid = doc["user_id"]
    for name in [doc.get("display_name")] + [d.get("name") for d in doc.get("devices") or []]:
        assert name is None or is_sealed(name), (uid, name)  # never in clear on the view topic
    return {**doc, "display_name": read_field(lookup, uid, "display_name", doc.get("display_name")),
            "devices": [{**d, "name": read_field(lookup, uid, "name", d.get("name"))}
                        for d in doc.get("devices") or []]}


def _rows_by_topic(path: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for line in path.read_text().splitlines():
        row = json.loads(line)
        out[row["topic"]].append(row)
    return out


def _latest(rows: list[dict]) -> dict[str, object]:
    """The value per key a compacted topic converges to (tombstones remove the key)."""
    latest: dict[str, object] = {}
    for r in sorted(rows, key=lambda r: (r["partition"], r["offset"])):
        latest[r["key"]] = r.get("value")
    return {k: v for k, v in latest.items() if v is not None}


def test_stock_consumers_decode_every_topic_through_an_external_registry(kafka_env, tmp_path: Path) -> None:
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

    python = stock_python()
    create_topics(kafka_env)
    prefix = kafka_env.topic_prefix
    port = free_port()
    registry = _registry(tmp_path, kafka_env, port)
    worker = None
    try:
        token = auth.issue_token("operator", kafka_env.token_secret, now=time.time(), ttl=600,
                                 scopes=["schemas:write"])
        url = f"http://operator:{token}@127.0.0.1:{port}"
        stock = SchemaRegistryClient({"url": url})
        stock.register_schema("meters-com.example.meters.Reading", Schema(json.dumps(FOREIGN), "AVRO"))
        settings = replace(kafka_env, schema_registry_url=url)
        env = settings.to_env()

        # the operator pushes our schemas there
        pushed = subprocess.run([PLAYLOG, "schemas", "register"], env=env, capture_output=True, text=True,
                                timeout=120)
        assert pushed.returncode == 0, pushed.stderr
        assert token not in pushed.stdout + pushed.stderr  # credentials are never printed
        local = Registry.load()
        theirs = {}
        for t in local.event_types:
            v = local.latest(t)
            subject = f"{prefix}{topic_of(t)}-{v.fullname}"
            theirs[t] = stock.get_latest_version(subject).schema_id
            assert theirs[t] != v.id, (t, theirs[t])  # the external registry's ids are not ours
        assert f"{len(local.versions)} schema version(s) registered" in pushed.stdout, pushed.stdout

        # producers: in-process with that registry's ids, and `playlog produce`
        events = fixture_events()
        external = Codec(Registry.load(), ids=RegistryIds(url, prefix))
        produce(settings, events, EventProducer(settings, external))
        p = EventProducer(settings, external)
        p.produce_raw(prefix + "listening", b"not avro", key="u001")
        p.flush()
        extra_file = tmp_path / "extra.jsonl"
        extra_file.write_text("".join(json.dumps(e) + "\n" for e in EXTRA))
        r = subprocess.run([PLAYLOG, "produce", str(extra_file)], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        codec = default_codec()
        extras = [codec.from_json(e) for e in EXTRA]
        produced = events + extras

        # a worker (and its plays stage) reading and writing with those ids
        worker = WorkerProcess(settings, tmp_path).start()
        wait_caught_up(settings, [worker], 240)
        for period in PERIODS:
            wait_until(f"the {period} statement", lambda period=period: worker.statement(period)
                       == expected_statement(period), 120, every=1.0)
        want_streams = {s[1] for per in ("2026-04", "2026-05", "2026-06") for s in oracle_streams(events, per)}

        # `playlog consume` decodes with them too
        r = subprocess.run([PLAYLOG, "consume", "listening"], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and "1 record(s) did not decode" in r.stderr, r.stderr  # the "not avro" one
        consumed = sorted(r.stdout.splitlines())
        want = sorted(json.dumps(codec.to_json(e), separators=(",", ":")) for e in produced
                      if topic_of(e["type"]) == "listening")
        assert [json.dumps(json.loads(x), separators=(",", ":")) for x in consumed] == want

        # the stock consumer: every topic, content types from the AsyncAPI document
        doc = document(local, prefix, bootstrap=settings.bootstrap_servers, registry_url=url, version="test")
        types = {ch["address"]: doc["components"]["messages"][next(iter(ch["messages"]))]["contentType"]
                 for ch in doc["channels"].values()}
        assert set(types) == {prefix + t.name for t in load_catalog()}
        deadline = time.monotonic() + 180  # a bound, not a speed claim (a busy machine is slow)
        while True:  # the worker publishes streams and statements every few seconds
            config = tmp_path / "consumer.json"
            config.write_text(json.dumps({"bootstrap": settings.bootstrap_servers,
                                          "registry": f"http://127.0.0.1:{port}", "topics": types}))
            out = tmp_path / "decoded.jsonl"
            run = subprocess.run([str(python), str(CONSUMER), str(config), str(out)], capture_output=True, text=True,
                                 timeout=300, cwd="/")
            assert run.returncode == 0, run.stderr
            rows = _rows_by_topic(out)
            streams = set(_latest(rows[prefix + "streams"]))
            statements = _latest(rows[prefix + "view.royalties"])
            if (streams == want_streams and all(statements.get(p) == expected_statement(p) for p in PERIODS)) \
                    or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert streams == want_streams
        for period in PERIODS:
            assert statements[period] == expected_statement(period)

        # source topics: every record decoded, the external ids, the produced events in order per key
        names = {local.latest(t).fullname: t for t in local.event_types}
        keys = PiiKeyStore(settings)  # personal fields travel sealed: compare them opened
        for spec in load_catalog():
            if spec.derived:
                continue
            topic = prefix + spec.name
            want_by_key: dict[str, list[dict]] = defaultdict(list)
            for e in produced:
                if topic_of(e["type"]) == spec.name:
                    want_by_key[key_of(e)].append(e)
            got_by_key: dict[str, list[dict]] = defaultdict(list)
            errors = []
            for row in sorted(rows.get(topic, []), key=lambda r: (r["partition"], r["offset"])):
                if "error" in row:
                    errors.append(row)
                    continue
                event_type = names[row["record"]]
                assert row["schema_id"] == theirs[event_type], row
                value = {**row["value"], "type": event_type}
                for f in PII_FIELDS.get(event_type, ()):
                    assert value.get(f) is None or is_sealed(value[f]), (event_type, f)
                got_by_key[row["key"]].append(open_event(value, keys.lookup))
            assert got_by_key == want_by_key, spec.name
            if spec.name == "listening":
                assert [(e["key"], e["offset"] >= 0) for e in errors] == [("u001", True)], errors
            else:
                assert not errors, errors[:3]

        # derived topics: JSON views as the folds give them, dead letters with their original bytes
        for (view, key), document_ in view_docs(produced).items():
            got = _latest(rows[f"{prefix}view.{view}"]).get(key)
            if view == "users":
                got = _opened_user_view(got, keys.lookup)
            assert got == document_, (view, key)
        player = _latest(rows[prefix + "view.player"])["u001"]
        assert player["device_id"] == "d1" and player["is_playing"] is False and player["position_ms"] == 1500
        dead = rows[prefix + "deadletter"]
        assert any(d["value_hex"] == b"not avro".hex() and d["headers"]["source.topic"] == prefix + "listening"
                   for d in dead), dead
        assert all(d["headers"].get("reason") for d in dead)

        # the consumer guide's example, as printed in the README, in the same bare virtualenv
        run = subprocess.run([str(python), str(GUIDE), settings.bootstrap_servers, f"http://127.0.0.1:{port}", prefix],
                             capture_output=True, text=True, timeout=300, cwd="/")
        assert run.returncode == 0, run.stderr
        lines = [json.loads(line) for line in run.stdout.splitlines()]
        plays = [x["value"] for x in lines if x["topic"] == prefix + "listening"]
        assert sorted(v["event_id"] for v in plays if "event_id" in v) == sorted(
            e["event_id"] for e in produced if topic_of(e["type"]) == "listening")
        assert [v for v in plays if "undecodable" in v] and len(plays) == len(rows[prefix + "listening"])
        users = {x["key"]: x["value"] for x in lines if x["topic"] == prefix + "view.users"}
        assert users["u001"]["country"] == "DE" and users["u001"]["devices"][0]["device_id"] == "d1"
    finally:
        if worker is not None:
            worker.stop()
        registry.stop()
