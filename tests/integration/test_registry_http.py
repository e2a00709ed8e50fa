"""``playlog registry`` answers stock Schema Registry clients as Confluent's registry does.

Scenario: the registry runs as a process (no broker needed). confluent-kafka's own
``SchemaRegistryClient`` and ``AvroDeserializer`` talk to it. We expect: every schema version of
``schemas/registry.json`` under its id and its TopicRecordNameStrategy subject (whatever ``?subject=``
a deserializer sends); the stock deserializer decodes every event our codec encodes to the same
values; the compatibility endpoint refuses the breaking changes ``playlog schemas check`` refuses;
registration needs an operator token and survives a restart; malformed requests get the registry's
JSON error model, never a 500; the default secret is refused beyond loopback.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from devstack.supervisor import Child, free_port
from playback import auth
from schemas.codec import default_codec
from schemas.registry import Registry
from tests.support.events import any_event
from tests.support.playback_procs import PLAYLOG, base_env, http, tail, wait_until
from tests.unit.test_registry_store import BREAKING, GOOD, _changed
from topics.topic_catalog import topic_of

PREFIX = "reg."
SECRET = "registry-test-token-secret-0123456789"
V1 = "application/vnd.schemaregistry.v1+json"


class Registry_:
    def __init__(self, tmp: Path, port: int):
        self.port, self.tmp = port, tmp
        self.env = base_env(PLAYLOG_DATA_DIR=str(tmp / "data"), PLAYLOG_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
                            PLAYLOG_TOPIC_PREFIX=PREFIX, PLAYLOG_REGISTRY_PORT=str(port), PLAYLOG_TOKEN_SECRET=SECRET)
        self.child: Child | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Registry_:
        self.child = Child("registry", [PLAYLOG, "registry"], self.env, self.tmp / "registry.log").start()
        wait_until("the registry", self._up, 60, on_timeout=lambda: tail(self.tmp / "registry.log"))
        return self

    def _up(self) -> bool:
        assert self.child is not None and self.child.alive(), tail(self.tmp / "registry.log")
        try:
            return http("GET", self.port, "/healthz", timeout=2)[0] == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry_]:
    r = Registry_(tmp_path_factory.mktemp("registry"), free_port()).start()
    try:
        yield r
    finally:
        r.stop()


def _client(url: str):
    from confluent_kafka.schema_registry import SchemaRegistryClient

    return SchemaRegistryClient({"url": url})


def _subject(event_type: str) -> str:
    return f"{PREFIX}{topic_of(event_type)}-{Registry.load().latest(event_type).fullname}"


def _operator(scopes: tuple[str, ...] = ("schemas:write",)) -> str:
    return auth.issue_token("ops", SECRET, now=time.time(), ttl=600, scopes=list(scopes))


def test_every_schema_version_by_id_and_by_subject(reg: Registry_) -> None:
    c = _client(reg.url)
    local = Registry.load()
    for v in local.versions:
        topic = PREFIX + topic_of(v.event_type)
        # what AvroDeserializer asks, with the subject of the default TopicNameStrategy
        got = c.get_schema(v.id, subject_name=f"{topic}-value")
        assert got.schema_type == "AVRO" and json.loads(got.schema_str) == v.schema
        assert [(sv.subject, sv.version) for sv in c.get_schema_versions(v.id)] == [(_subject(v.event_type), v.version)]
    assert sorted(c.get_subjects()) == sorted(_subject(t) for t in local.event_types)
    for t in local.event_types:
        latest = c.get_latest_version(_subject(t))
        assert (latest.schema_id, latest.version) == (local.latest(t).id, local.latest(t).version)
        found = c.lookup_schema(_subject(t), latest.schema)
        assert (found.schema_id, found.version) == (latest.schema_id, latest.version)
    assert c.get_config().compatibility_level == "FULL"
    assert c.get_schema_types() == ["AVRO"]
    status, headers, body = http("GET", reg.port, "/schemas/ids/1?fetchMaxId=true&subject=x-value")
    assert status == 200 and headers["content-type"].startswith(V1)
    assert json.loads(body)["maxId"] == max(v.id for v in local.versions)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(obj=any_event())
def test_the_stock_deserializer_decodes_what_our_codec_encodes(reg: Registry_, obj: dict) -> None:
    import datetime as dt

    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    codec = default_codec()
    event = codec.from_json(obj)
    deserializer = _deserializer(reg.url)
    topic = PREFIX + topic_of(event["type"])
    value = deserializer(codec.encode(event), SerializationContext(topic, MessageField.VALUE))
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    plain = {k: (v - epoch) // dt.timedelta(milliseconds=1) if isinstance(v, dt.datetime) else v
             for k, v in value.items()}
    assert {**plain, "type": event["type"]} == event
    assert isinstance(deserializer, AvroDeserializer)


_DESERIALIZERS: dict[str, object] = {}


def _deserializer(url: str):
    from confluent_kafka.schema_registry.avro import AvroDeserializer

    if url not in _DESERIALIZERS:  # one client, as a service would keep: its cache spares the round trips
        _DESERIALIZERS[url] = AvroDeserializer(_client(url))
    return _DESERIALIZERS[url]


@pytest.mark.parametrize("change", BREAKING)
def test_compatibility_refuses_a_breaking_change(reg: Registry_, change) -> None:
    from confluent_kafka.schema_registry import Schema

    schema = _changed("play.started", change)
    assert _client(reg.url).test_compatibility(_subject("play.started"), Schema(json.dumps(schema), "AVRO")) is False
    status, _, body = http("POST", reg.port, f"/compatibility/subjects/{_subject('play.started')}/versions/latest"
                           "?verbose=true", body={"schema": json.dumps(schema)})
    answer = json.loads(body)
    assert status == 200 and answer["is_compatible"] is False and answer["messages"], answer


def test_compatibility_accepts_a_compatible_change(reg: Registry_) -> None:
    from confluent_kafka.schema_registry import Schema

    schema = Schema(json.dumps(_changed("play.started", GOOD)), "AVRO")
    c = _client(reg.url)
    assert c.test_compatibility(_subject("play.started"), schema) is True
    assert c.test_compatibility_all_versions(_subject("play.started"), schema) is True


def test_registration_needs_an_operator_token_and_survives_a_restart(tmp_path: Path) -> None:
    from confluent_kafka.schema_registry import Schema, SchemaRegistryError

    r = Registry_(tmp_path, free_port()).start()
    subject = _subject("play.started")
    body = {"schema": json.dumps(_changed("play.started", GOOD))}
    try:
        target = f"/subjects/{subject}/versions"
        status, headers, raw = http("POST", r.port, target, body=body)
        assert (status, json.loads(raw)["error_code"]) == (401, 40101) and "www-authenticate" in headers
        user = auth.issue_token("u1", SECRET, now=time.time(), ttl=600)  # a listener's token: no such scope
        status, _, raw = http("POST", r.port, target, body=body, token=user)
        assert (status, json.loads(raw)["error_code"]) == (403, 40301)
        forged = auth.issue_token("ops", "not-the-secret", now=time.time(), ttl=600, scopes=["schemas:write"])
        assert http("POST", r.port, target, body=body, token=forged)[0] == 401
        with pytest.raises(SchemaRegistryError) as exc:  # a breaking change: 409, even for an operator
            _client(f"http://ops:{_operator()}@127.0.0.1:{r.port}").register_schema(
                subject, Schema(json.dumps(_changed("play.started", BREAKING[0])), "AVRO"))
        assert exc.value.http_status_code == 409
        # the stock client with the token as the password of the URL (HTTP Basic)
        new_id = _client(f"http://ops:{_operator()}@127.0.0.1:{r.port}").register_schema(
            subject, Schema(body["schema"], "AVRO"))
        local = Registry.load()
        assert new_id == max(v.id for v in local.versions) + 1
        basic = base64.b64encode(f"ops:{_operator()}".encode()).decode()
        status, _, raw = http("POST", r.port, target, body=body, headers={"Authorization": f"Basic {basic}"})
        assert (status, json.loads(raw)) == (200, {"id": new_id})  # the same schema again: its id
    finally:
        r.stop()
    r.start()
    try:
        c = _client(r.url)
        latest = c.get_latest_version(subject)
        assert (latest.schema_id, latest.version) == (new_id, local.latest("play.started").version + 1)
        assert json.loads(c.get_schema(new_id).schema_str) == json.loads(body["schema"])
    finally:
        r.stop()


BAD = [
    ("GET", "/schemas/ids/abc", None, 404, 40403),
    ("GET", "/schemas/ids/99999999999999999999", None, 404, 40403),
    ("GET", "/schemas/ids/424242", None, 404, 40403),
    ("GET", "/schemas/ids/1?subject=:.other:x", None, 404, 40403),
    ("GET", "/subjects/nope/versions", None, 404, 40401),
    ("GET", "/subjects/nope/versions/latest", None, 404, 40401),
    ("GET", f"/subjects/{PREFIX}listening-playlog.events.PlayStarted/versions/0", None, 422, 42202),
    ("GET", f"/subjects/{PREFIX}listening-playlog.events.PlayStarted/versions/99", None, 404, 40402),
    ("GET", f"/subjects/{PREFIX}listening-playlog.events.PlayStarted/versions/%E2%9C%93", None, 422, 42202),
    ("GET", "/subjects?offset=abc", None, 400, 400),
    ("GET", "/config/nope", None, 404, 40408),
    ("GET", "/no/such/route", None, 404, 404),
    ("DELETE", f"/subjects/{PREFIX}listening-playlog.events.PlayStarted", None, 405, 405),
    ("PUT", "/config", {"compatibility": "NONE"}, 405, 405),
    ("POST", f"/subjects/{PREFIX}listening-playlog.events.PlayStarted", b"{not json", 400, 400),
    ("POST", f"/subjects/{PREFIX}listening-playlog.events.PlayStarted", [1, 2], 400, 400),
    ("POST", f"/subjects/{PREFIX}listening-playlog.events.PlayStarted", {"schema": 5}, 422, 42201),
    ("POST", f"/subjects/{PREFIX}listening-playlog.events.PlayStarted", {"schema": "{}"}, 422, 42201),
    ("POST", f"/subjects/{PREFIX}listening-playlog.events.PlayStarted", {"schema": '"int"'}, 422, 42201),
    ("POST", "/compatibility/subjects/nope/versions/latest", {"schema": '{"type":"record","name":"A","fields":[]}'},
     404, 40401),
    ("POST", f"/compatibility/subjects/{PREFIX}listening-playlog.events.PlayStarted/versions/x",
     {"schema": '{"type":"record","name":"A","fields":[]}'}, 422, 42202),
    ("POST", f"/subjects/{PREFIX}listening-playlog.events.PlayStarted", b"x" * (2 << 20), 413, 413),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), BAD, ids=[f"{m} {p[:50]}" for m, p, *_ in BAD])
def test_bad_requests_get_the_error_model(reg: Registry_, method: str, path: str, body, status: int,
                                          code: int) -> None:
    if isinstance(body, bytes):
        got, _, raw = _send(reg.port, method, path, body)
    else:
        got, _, raw = http(method, reg.port, path, body=body)
    answer = json.loads(raw)
    assert (got, answer["error_code"]) == (status, code), answer
    assert isinstance(answer["message"], str) and answer["message"]


def _send(port: int, method: str, path: str, body: bytes) -> tuple[int, dict, bytes]:
    from http.client import HTTPConnection

    conn = HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": V1})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_asyncapi_is_served(reg: Registry_) -> None:
    status, headers, raw = http("GET", reg.port, "/asyncapi.json")
    doc = json.loads(raw)
    assert status == 200 and doc["asyncapi"] == "3.0.0"
    assert doc["channels"]["listening"]["address"] == PREFIX + "listening"
    assert doc["servers"]["kafka"]["bindings"]["kafka"]["schemaRegistryUrl"] == reg.url


def test_the_development_secret_is_refused_beyond_loopback(tmp_path: Path) -> None:
    env = base_env(PLAYLOG_DATA_DIR=str(tmp_path / "data"), PLAYLOG_REGISTRY_PORT=str(free_port()))
    out = subprocess.run([PLAYLOG, "registry", "--host", "0.0.0.0"], env=env, capture_output=True, text=True,
                         timeout=60)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "PLAYLOG_TOKEN_SECRET" in lines[0], out.stderr


def test_a_port_in_use_exits_2(reg: Registry_) -> None:
    out = subprocess.run([PLAYLOG, "registry"], env=reg.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "PLAYLOG_REGISTRY_PORT" in out.stderr and "Traceback" not in out.stderr, out.stderr
