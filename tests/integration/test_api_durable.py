"""Acknowledged means durable: a write the API answered 2xx for survives a broker outage.

Scenario: a private broker (not the session one: this test stops it), an API process caught up with
a user, their device and a track they may play. Four clients send a steady load of player commands
(``PUT /v1/me/player/play``, each with its own ``position_ms``, so each is recognisable in the topic).
The broker is stopped for longer than any producer retry window, then started again on the same data.

We expect: every command answered 2xx is in the ``player`` topic afterwards (read back, compared by
``position_ms``); commands during the outage answered 503 with ``Retry-After``, never 2xx-then-lost
and never another error; ``/healthz`` says not ready (503, naming the broker) during the outage and
ready again after; and commands succeed again once the broker is back.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

from devstack.kafka import LocalKafka
from devstack.supervisor import Child, free_port, free_server_port
from playback import auth
from schemas.codec import default_codec
from tests.support.playback_procs import (
    PLAYLOG,
    RawProducer,
    base_env,
    http,
    json_of,
    read_topic,
    run_playlog,
    tail,
    view_docs,
    wait_until,
)

TOKEN_SECRET = "durable-test-token-secret-0123456789"
SIGNING_KEYS = "d1:durable-test-signing-key-0123456789"
T0 = 1_767_225_600_000
TRACK, USER = "trk-dur", "u-dur"
OUTAGE_S = 25.0  # longer than the API producer's message timeout: nothing may wait it out in a queue
EVENTS = [
    {"type": "track.ingested", "event_id": "d-1", "occurred_at": T0, "track_id": TRACK, "isrc": "ISRCDUR",
     "title": "Durable", "album_id": "al", "artist_ids": ["ar"], "duration_ms": 200_000, "genres": ["pop"],
     "explicit": False, "distributor": "d", "rightsholders": [{"rightsholder_id": "rh", "share_ppm": 1_000_000}]},
    {"type": "rights.changed", "event_id": "d-2", "occurred_at": T0, "track_id": TRACK, "territory": "DE",
     "allowed": True, "valid_from": None, "valid_to": None},
    {"type": "user.registered", "event_id": "d-3", "occurred_at": T0, "user_id": USER, "country": "DE",
     "product": "premium", "display_name": "Dur"},
    {"type": "device.registered", "event_id": "d-4", "occurred_at": T0, "user_id": USER, "device_id": "d1",
     "device_type": "phone", "name": "Phone"},
]


def tail_without_rdkafka(path: Path) -> str:
    """The API log's tail without librdkafka's connection retries (which flood it while the broker is down)."""
    return "\n".join(line for line in tail(path, 400_000).splitlines() if "rdkafka" not in line)[-4000:]


def test_every_acknowledged_write_survives_a_broker_outage(tmp_path: Path) -> None:
    # stopped and started again on these ports: outside the ephemeral range (see free_server_port)
    broker = LocalKafka(tmp_path / "kafka", port=free_server_port(), controller_port=free_server_port(), heap="384m")
    broker.start(timeout=120)
    prefix = f"dur{os.getpid()}."
    port = free_port()
    env = base_env(PLAYLOG_BOOTSTRAP_SERVERS=broker.bootstrap, PLAYLOG_TOPIC_PREFIX=prefix,
                   PLAYLOG_DATA_DIR=str(tmp_path / "data"), PLAYLOG_API_PORT=str(port),
                   PLAYLOG_TOKEN_SECRET=TOKEN_SECRET, PLAYLOG_SIGNING_KEYS=SIGNING_KEYS, PLAYLOG_LOG_LEVEL="INFO")
    log = tmp_path / "api.log"
    api: Child | None = None
    try:
        run_playlog(env, "topics", "create")
        p = RawProducer(broker.bootstrap)
        for (view, key), doc in view_docs(EVENTS).items():
            p.send_doc(f"{prefix}view.{view}", key, doc)
        p.flush()
        del p
        api = Child("api", [PLAYLOG, "api"], env, log).start()

        def health() -> tuple[int, dict]:
            try:
                status, _, body = http("GET", port, "/healthz", timeout=10)
            except OSError:
                return 0, {}
            return status, json_of(body) or {}

        wait_until("the API to be ready", lambda: health()[0] == 200, timeout=180, on_timeout=lambda: tail(log))
        token = auth.issue_token(USER, TOKEN_SECRET, now=time.time(), ttl=3600)
        positions = itertools.count(1)
        results: list[tuple[float, int, int, dict, bytes, float]] = []  # (done, position, status, headers, body, began)
        stop = threading.Event()

        def client() -> None:
            while not stop.is_set():
                pos, began = next(positions), time.monotonic()
                body = {"uris": [f"spotify:track:{TRACK}"], "position_ms": pos}
                try:
                    status, headers, raw = http("PUT", port, "/v1/me/player/play?device_id=d1", token=token,
                                                body=body, timeout=30)
                except OSError as exc:
                    status, headers, raw = -1, {}, str(exc).encode()
                results.append((time.monotonic(), pos, status, headers, raw, began))
                time.sleep(0.02)

        clients = [threading.Thread(target=client, daemon=True) for _ in range(4)]
        for c in clients:
            c.start()
        wait_until("writes before the outage", lambda: sum(r[2] == 204 for r in results) >= 20, timeout=60)

        broker.stop()
        down_at = time.monotonic()
        unhealthy = wait_until("/healthz to say not ready", lambda: (lambda h: h if h[0] == 503 else None)(health()),
                               timeout=OUTAGE_S, on_timeout=lambda: tail(log))
        assert "broker" in (unhealthy[1].get("error") or ""), unhealthy
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        up_at = time.monotonic()
        broker.start(timeout=120)
        wait_until("/healthz ready again", lambda: health()[0] == 200, timeout=120,
                   on_timeout=lambda: f"broker alive: {broker.alive()}\n{tail(broker.data_dir / 'server.log')}\n"
                                      f"{health()}\n{tail_without_rdkafka(log)}")
        wait_until("writes after the outage",
                   lambda: sum(r[2] == 204 and r[0] > up_at for r in results) >= 20, timeout=120)
        stop.set()
        for c in clients:
            c.join(60)
        codec = default_codec()
        in_topic = set()
        for m in read_topic(broker.bootstrap, f"{prefix}player"):
            event = codec.decode(m.value())
            if event["type"] == "player.play_requested" and event["user_id"] == USER:
                in_topic.add(event["position_ms"])
    finally:
        if api is not None:
            api.stop()
        broker.stop()

    acked = {r[1] for r in results if 200 <= r[2] < 300}
    refused = [r for r in results if not 200 <= r[2] < 300]
    lost = sorted(acked - in_topic)
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged writes are not in the topic: {lost[:10]}\n{tail(log)}"
    during = [r for r in results if down_at < r[5] and r[0] < up_at]  # began after the stop, done before the start
    assert during and all(r[2] == 503 for r in during), [(r[1], r[2]) for r in during][:10]
    for r in refused:
        assert r[2] == 503, (r[1], r[2], r[4][:200])
        assert r[3].get("retry-after", "").isdigit(), r[3]
        assert json_of(r[4])["error"]["status"] == 503
    assert any(200 <= r[2] < 300 and r[0] > up_at for r in results)
