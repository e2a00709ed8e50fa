"""Broker bounces on a real 3-node KRaft cluster (replication 3, ``min.insync.replicas=2``).

Scenario 1: two workers process the shared fixture while its events are produced in chunks by one
idempotent producer (``enable.idempotence``, ``acks=all``); twice during it a broker is SIGKILLed
while records are in flight, left down while more are produced, then started again on its data dir:
first the leader of ``royalty.inputs`` (the one partition every royalty fact goes through), then the
active controller (or, if that was the first victim, another node). We expect the live statements
to equal the fixture's byte for byte, every consumer group to commit the end of every partition,
and the source topics to hold each produced record exactly once: nothing lost to the kills, nothing
doubled by the producer's retries.

Scenario 2: a worker and the playback API run; the coordinator of the worker's consumer group is
SIGKILLed and left down. We expect new events to be processed all the same (the statements reach
the fixture's, a takedown reaches the API's views) and the API to answer a request that needs the
views, and a write it acknowledges to be in the log.

Not covered: a broker lost while a worker is still starting. faust-streaming declares each table's
changelog topic at start (a CreateTopics request) and exits on the connection error when the
broker it asked dies then (seen once in 4 runs before the test waited for the workers to be up);
``playlog up`` would then stop the stack as a child died.

The cluster is started once for the module; each test starts with every node up and in sync.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import load
from devstack.kafka import LocalKafkaCluster
from devstack.supervisor import Child, free_port
from devstack.workers import WorkerProcess, wait_caught_up
from playback import auth
from schemas.codec import default_codec
from tests.integration.test_up import cmdline, descendants, running, start_up, wait_ready
from tests.support.chaos import ChaosRun
from tests.support.cluster import (
    PacedProducer,
    cluster_settings,
    free_port_run,
    group_coordinator,
    prefix_topics,
    source_records,
    start_cluster,
    topic_replication,
)
from tests.support.fixture import PERIODS, expected_statement, fixture_events, produce
from tests.support.playback_procs import PLAYLOG, base_env, http, json_of, run_playlog, tail, wait_until
from topics.admin import create_topics, replication_for
from topics.producer import EventProducer
from topics.topic_catalog import load_catalog, topic_of

pytestmark = pytest.mark.kafka

SETTLE_TIMEOUT = 150.0
TOKEN_SECRET = "bounce-test-token-secret-0123456789"
SIGNING_KEYS = "b1:bounce-test-signing-key-0123456789"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafkaCluster]:
    c = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def whole_cluster(cluster: LocalKafkaCluster) -> LocalKafkaCluster:
    """The module's cluster with every node up and every partition fully replicated: a node an
    earlier test killed is started again first (here, not in that test's teardown, so that the
    last test's victim is not restarted only to be stopped)."""
    for node in sorted(set(cluster.nodes) - set(cluster.alive())):
        cluster.restart(node)
    cluster.wait_in_sync()
    return cluster


def _prefix(name: str) -> str:
    return f"{name}{int(time.time() * 1000) % 10**8}."


def _say(what: str, t0: float) -> None:
    print(f"[{time.monotonic() - t0:6.1f}s] {what}", flush=True)  # shown for a failed test


def test_up_with_3_brokers_runs_a_replicated_cluster_and_sigterm_leaves_no_process(tmp_path: Path) -> None:
    """``playlog up --brokers 3``: three nodes on the ports the settings derive, every child given every
    node, the topics and the worker's changelogs replicated 3 times; SIGTERM stops every process.
    (First in the module: the shared cluster is not started yet.)"""
    data = tmp_path / "data"
    base, ctl = free_port_run(3, 2), free_port_run(3, 2)
    env = base_env(PLAYLOG_DATA_DIR=str(data), PLAYLOG_BOOTSTRAP_SERVERS=f"127.0.0.1:{base}",
                   PLAYLOG_KAFKA_CONTROLLER_PORT=str(ctl), PLAYLOG_TOPIC_PREFIX="up3.",
                   PLAYLOG_WORKER_URLS=f"http://127.0.0.1:{free_port()}", PLAYLOG_REGISTRY_PORT=str(free_port()))
    bootstrap = ",".join(f"127.0.0.1:{base + 2 * i}" for i in range(3))
    proc, log = start_up(tmp_path, env, "--brokers", "3", "--workers", "1", "--no-api", "--no-cdn")
    family: set[int] = set()
    try:
        text = wait_ready(proc, log, timeout=240)
        assert f"broker: ready on {bootstrap}" in text, text
        assert "replication 3" in text, text
        stack = json.loads((data / "up" / "stack.json").read_text())
        assert stack["bootstrap_servers"] == bootstrap
        for i in (1, 2, 3):
            assert (data / "kafka" / f"node-{i}" / "logs" / "meta.properties").exists()
        family = descendants(proc.pid)
        assert sum("kafka.Kafka" in cmdline(p) for p in family) == 3
        worker = next(p for p in family if " worker " in cmdline(p))
        worker_env = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
        assert f"PLAYLOG_BOOTSTRAP_SERVERS={bootstrap}".encode() in worker_env  # every node, not only the first
        s = load({"PLAYLOG_BOOTSTRAP_SERVERS": bootstrap, "PLAYLOG_TOPIC_PREFIX": "up3."})
        names = prefix_topics(s)
        assert len(names) >= len(load_catalog())
        assert {t: topic_replication(s, t) for t in names} == {t: (3, 2) for t in names}
    finally:
        family |= descendants(proc.pid) if proc.poll() is None else set()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert code == 0, log.read_text()[-2000:]
    left = [f"{p}: {cmdline(p)}" for p in family if running(p)]
    assert not left, left


def test_topics_on_the_cluster_are_replicated_3_with_min_insync_2(whole_cluster: LocalKafkaCluster,
                                                                   tmp_path: Path) -> None:
    s = cluster_settings(whole_cluster, tmp_path / "data", _prefix("rep"))
    assert replication_for(s) == 3
    created = create_topics(s)
    assert len(created) == len(load_catalog())
    for name in created:
        assert topic_replication(s, name) == (3, 2), name
    # the CLI's default is the cluster's too (it used to be 1: unreplicated topics on a cluster)
    cli = cluster_settings(whole_cluster, tmp_path / "data", _prefix("repcli"))
    run_playlog(base_env(**cli.to_env({})), "topics", "create")
    for name in (cli.topic_prefix + t.name for t in load_catalog()):
        assert topic_replication(cli, name) == (3, 2), name
    # the brokers' own defaults, for topics others create (Faust's, Kafka's internal ones)
    cfg = whole_cluster.node(1).config()
    assert cfg["offsets.topic.replication.factor"] == "3"
    assert cfg["transaction.state.log.replication.factor"] == "3"
    assert cfg["transaction.state.log.min.isr"] == "2"
    assert cfg["min.insync.replicas"] == "2" and cfg["default.replication.factor"] == "3"
    assert len(cfg["controller.quorum.voters"].split(",")) == 3


def _bounce(cluster: LocalKafkaCluster, victim: int, producer: EventProducer, during: list[dict],
            while_down: list[dict], t0: float, rng: random.Random) -> None:
    """SIGKILL ``victim`` while ``during`` is being produced, produce ``while_down`` with it down, then
    start it again and wait until every partition is fully replicated again."""
    paced = PacedProducer(producer, during, seconds=4.0).start()
    time.sleep(rng.uniform(0.5, 2.5))  # pacing: the kill lands while records are in flight
    cluster.kill(victim)
    _say(f"killed node {victim}", t0)
    paced.join()
    produce(producer.settings, while_down, producer)
    _say(f"produced {len(during) + len(while_down)} events around the kill", t0)
    secs = cluster.restart(victim)
    waited = cluster.wait_in_sync()
    _say(f"node {victim} back in {secs:.1f}s, in sync {waited:.1f}s later", t0)


def test_brokers_killed_and_restarted_twice_lose_nothing_and_double_nothing(
        whole_cluster: LocalKafkaCluster, tmp_path: Path) -> None:
    cluster = whole_cluster
    t0 = time.monotonic()
    s = cluster_settings(cluster, tmp_path / "data", _prefix("bounce"))
    create_topics(s)
    producer = EventProducer(s)
    assert producer.config["enable.idempotence"] is True and producer.config["acks"] == "all"

    rng = random.Random(13)
    events = fixture_events()
    rng.shuffle(events)
    n = len(events)
    chunks = [events[i * n // 6:(i + 1) * n // 6] for i in range(6)]
    run = ChaosRun(s, tmp_path, seed=13, workers=2, settle_timeout=SETTLE_TIMEOUT)
    run.procs = [WorkerProcess(s, tmp_path / "logs", name=f"w{i}") for i in (1, 2)]
    try:
        produce(s, chunks[0], producer)
        for w in run.procs:
            w.start()
        # the bounces strike a running pipeline: the workers have started (Faust declares its topics
        # while it starts, and a worker that loses a broker then exits; see the module doc) and have
        # processed the first chunk
        wait_caught_up(s, run.procs, timeout=120)
        _say("workers up and caught up", t0)

        inputs = s.topic_prefix + "royalty.inputs"
        first = cluster.leader_of(inputs)
        _bounce(cluster, first, producer, chunks[1], chunks[2], t0, rng)
        controller = cluster.controller()
        leader = cluster.leader_of(inputs)
        second = next(v for v in (controller, leader, *cluster.nodes) if v != first)
        _say(f"first victim {first} (royalty.inputs leader); controller now {controller}, "
             f"royalty.inputs leader now {leader}: second victim {second}", t0)
        _bounce(cluster, second, producer, chunks[3], chunks[4], t0, rng)
        produce(s, chunks[5], producer)
        assert first != second and controller in (first, second)

        for w in run.procs:
            assert w.alive(), f"{w.name} died (exit {w.returncode}); see {w.log}\n{w.tail(30)}"
        report = run.settle("after two broker bounces")
        assert report.ok, report.summary() + "\n" + "\n".join(run.log)
        for p in PERIODS:
            assert report.statements[p] == expected_statement(p)

        # producer idempotence: every produce() call is in the log exactly once, despite the retries
        # of the requests in flight at each kill (the fixture itself repeats some events on purpose)
        codec = default_codec()
        sent = Counter((topic_of(e["type"]), codec.encode(e)) for e in events)
        stored = source_records(s)
        assert sum(stored.values()) == sum(sent.values()) == n
        assert stored == sent, (f"{sum((stored - sent).values())} record(s) doubled, "
                                f"{sum((sent - stored).values())} lost")
        # every topic of the run (the catalog's, and any the workers created) and Kafka's own offsets
        # topic are replicated alike: none a broker loss could make unavailable
        names = prefix_topics(s)
        assert len(names) >= len(load_catalog())
        assert {t: topic_replication(s, t) for t in [*names, "__consumer_offsets"]} == {
            t: (3, 2) for t in [*names, "__consumer_offsets"]}
        _say("done", t0)
    finally:
        for w in run.procs:
            w.stop()


def _ev(etype: str, event_id: str, at: str, **fields: object) -> dict:
    return default_codec().from_json({"type": etype, "event_id": event_id, "occurred_at": at, **fields})


USER, TRACK = "u-loss", "trk-loss"
FACTS = [
    _ev("user.registered", "loss-1", "2026-05-01T00:00:00.000Z", user_id=USER, country="DE", product="premium",
        display_name="Loss"),
    _ev("device.registered", "loss-2", "2026-05-01T00:00:00.000Z", user_id=USER, device_id="d1",
        device_type="phone", name="Phone"),
    _ev("track.ingested", "loss-3", "2026-05-01T00:00:00.000Z", track_id=TRACK, isrc="ISRCLOSS", title="Loss Song",
        album_id="al-loss", artist_ids=["ar-loss"], duration_ms=200_000, genres=["pop"], explicit=False,
        distributor="d", rightsholders=[{"rightsholder_id": "rh-loss", "share_ppm": 1_000_000}]),
    _ev("rights.changed", "loss-4", "2026-05-01T00:00:00.000Z", track_id=TRACK, territory="DE", allowed=True,
        valid_from=None, valid_to=None),
]
TAKEDOWN = _ev("track.taken_down", "loss-5", "2026-05-02T00:00:00.000Z", track_id=TRACK, territories=["DE"],
               reason="court order")


def test_a_worker_and_the_api_go_on_with_a_broker_down(whole_cluster: LocalKafkaCluster, tmp_path: Path) -> None:
    cluster = whole_cluster
    t0 = time.monotonic()
    port = free_port()
    s = cluster_settings(cluster, tmp_path / "data", _prefix("loss"), PLAYLOG_API_PORT=str(port),
                         PLAYLOG_TOKEN_SECRET=TOKEN_SECRET, PLAYLOG_SIGNING_KEYS=SIGNING_KEYS,
                         PLAYLOG_LOG_LEVEL="WARNING")
    create_topics(s)
    events = fixture_events()
    half = len(events) // 2
    producer = EventProducer(s)
    produce(s, FACTS + events[:half], producer)

    token = auth.issue_token(USER, TOKEN_SECRET, now=time.time(), ttl=3600)
    run = ChaosRun(s, tmp_path, seed=0, workers=1, settle_timeout=SETTLE_TIMEOUT)
    worker = WorkerProcess(s, tmp_path / "logs", name="w1")
    run.procs = [worker]
    api_log = tmp_path / "logs" / "api.log"
    api = Child("api", [PLAYLOG, "api"], s.to_env(base_env()), api_log,
                health_url=f"http://127.0.0.1:{port}/healthz")
    track_url = f"/v1/tracks/{TRACK}?market=DE"

    def playable() -> bool | None:
        """The API's answer for the track in DE (None: not answered from the views yet)."""
        assert api.alive(), f"the API exited with {api.returncode}\n{tail(api_log)}"
        try:
            status, _, body = http("GET", port, track_url, token=token)
        except OSError:
            return None
        doc = json_of(body)
        return doc["is_playable"] if status == 200 and doc else None

    try:
        worker.start()
        api.start()
        worker.wait_healthy(120)
        wait_until("the API to answer from the views", lambda: playable() is True, timeout=120,
                   on_timeout=lambda: tail(api_log))
        wait_caught_up(s, [worker], timeout=120)  # started, and through the first half
        _say("worker and API up, the track playable in DE", t0)

        victim = group_coordinator(s, f"{s.topic_prefix}worker")
        cluster.kill(victim)
        _say(f"killed node {victim} (coordinator of the worker group); it stays down", t0)

        produce(s, [TAKEDOWN, *events[half:]], producer)
        wait_until("the takedown to reach the API's views", lambda: playable() is False, timeout=SETTLE_TIMEOUT,
                   every=0.5, on_timeout=lambda: tail(api_log) + "\n" + worker.tail(30))
        _say("the takedown reached the API through the worker", t0)

        # a write the API acknowledges is in the log (acks=all: on both live replicas)
        status, _, body = http("PUT", port, "/v1/me/player/volume?volume_percent=40", token=token)
        assert status == 204, (status, body)

        report = run.settle("with a broker down")
        assert report.ok, report.summary() + "\n" + "\n".join(run.log)
        assert cluster.alive() == sorted(set(cluster.nodes) - {victim})
        assert worker.alive() and api.alive()
        volume = [v for (t, v), _ in source_records(s).items() if t == "player"]
        assert len(volume) == 1 and default_codec().decode(volume[0])["volume_percent"] == 40
        _say("done", t0)
    finally:
        worker.stop()
        api.stop()
