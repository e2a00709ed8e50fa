"""The taste stage on the real broker: listening -> view.taste, through a schedule of SIGKILLs (nothing
lost, nothing counted twice), read by an API replica that never reads the listening topic; an erased
user's document is tombstoned."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from core.settings import Settings
from playback.replica import Replica, topic_names
from processors import views
from processors.grants import NONCE_CHARS, SIG_CHARS, VERSION
from tests.unit.test_api_routes import T0, ev, track
from topics.admin import create_topics
from topics.kafka_io import EventProducer, iter_records
from topics.lag import group_lag

REPO = Path(__file__).resolve().parents[2]
USERS = ("u1", "u2", "u3")
PLAYS = 150  # per user


def _grant(i: int, user: str, t: str) -> str:
    return f"{VERSION}.{1_700_000_000_000 + i}.{'n' * NONCE_CHARS}.{user}.{t}.{'s' * SIG_CHARS}"


def _publish_views(settings: Settings, events: list[dict]) -> None:
    """The catalog and users documents the worker would publish (the same pure folds)."""
    p = EventProducer(settings)
    for spec in views.VIEWS:
        if spec.name not in ("catalog", "users"):
            continue
        published, _ = views.apply_batch(spec, {}, [(None, e) for e in events])
        for key, (_, doc) in published.items():
            p.produce_raw(f"{settings.topic_prefix}view.{spec.name}", orjson.dumps(doc), key=key)
    p.flush()


def _stage(settings: Settings, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "worker.taste_stage"], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def _views(settings: Settings) -> dict[str, dict | None]:
    out: dict[str, dict | None] = {}
    for rec in iter_records(settings, [settings.topic_prefix + "view.taste"]):
        out[rec.key.decode()] = orjson.loads(rec.value) if rec.value is not None else None
    return out


def _wait_no_lag(settings: Settings, proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        if not any(group_lag(settings, f"{settings.topic_prefix}taste", [settings.topic_prefix + "listening"]).values()):
            return
        time.sleep(0.3)
    raise AssertionError(f"taste stage still lags: {log.read_text()[-3000:]}")


def test_taste_view_survives_kills_and_feeds_a_replica_that_never_reads_listening(kafka_env, tmp_path: Path) -> None:
    settings = kafka_env
    create_topics(settings)
    catalog = [track("t1", "One", "I1", artist="a1", genres=("rock",)), track("t2", "Two", "I2", artist="a2",
               genres=("jazz",)), track("t3", "Three", "I3", artist="a1", genres=("rock",))]
    users = [ev("user.registered", user_id=u, country="DE", product="premium", display_name=None) for u in USERS]
    _publish_views(settings, catalog + users)
    rnd = random.Random(7)
    expected: dict[str, dict] = {u: {"signals": 0, "tracks": set(), "skips": 0} for u in USERS}
    events = []
    for i in range(PLAYS):
        for u in USERS:
            t = rnd.choice(["t1", "t2", "t3"])
            if rnd.random() < 0.25:  # a skip before 30 s: one "skip" signal, not a stream
                events.append(ev("play.skipped", at=T0 + i, play_id=_grant(i, u, t), user_id=u, track_id=t,
                                 ms_played=5_000, country="DE", product="premium"))
                expected[u]["signals"] += 1
                expected[u]["skips"] += 1
            else:  # a stream and a completion: two signals
                events.append(ev("play.completed", at=T0 + i, play_id=_grant(i, u, t), user_id=u, track_id=t,
                                 ms_played=200_000, country="DE", product="premium"))
                expected[u]["signals"] += 2
                expected[u]["tracks"].add(t)
    producer = EventProducer(settings)
    log = tmp_path / "stage.log"
    proc = _stage(settings, log)
    try:
        # the schedule: events arrive in slices while the stage is SIGKILLed and restarted four times
        slices = [events[i::5] for i in range(5)]
        for n, part in enumerate(slices):
            for e in part:
                producer.produce(e)
                if rnd.random() < 0.02:  # a client resends an event (same event, a new offset)
                    producer.produce(e)
            producer.flush()
            if n < 4:
                time.sleep(rnd.uniform(0.5, 2.0))
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                proc = _stage(settings, log)
        _wait_no_lag(settings, proc, log)
        docs = _views(settings)
        for u in USERS:
            profile = docs[u]["profile"]
            assert profile["signals"] == expected[u]["signals"], u  # nothing lost, nothing counted twice
            assert set(docs[u]["listened"]) == expected[u]["tracks"]
            assert len(profile["history"]) == min(expected[u]["signals"], 50)  # bounded: the newest 50
            assert "seen" not in profile

        replica = Replica(search=False)
        assert settings.topic_prefix + "listening" not in topic_names(settings.topic_prefix)
        replica.start(settings)
        try:
            assert replica.wait_ready(60), replica.last_error
            assert all(not t.endswith(".listening") for t in replica.feed._topics)
            for u in USERS:
                assert replica.taste_profile(u)["signals"] == expected[u]["signals"]
                assert replica.listened(u) == expected[u]["tracks"]
                assert {h["track_id"] for h in replica.history(u)} <= {"t1", "t2", "t3"}
            # an erasure: the stage tombstones the user's documents and the replica drops them
            erase = [*users, ev("user.erasure_requested", user_id="u3")]
            _publish_views(settings, erase)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and replica.taste_profile("u3") is not None:
                time.sleep(0.2)
            assert replica.taste_profile("u3") is None and replica.taste_profile("u1") is not None
        finally:
            replica.stop()
        deadline = time.monotonic() + 60  # the stage saw the erasure too: its documents are tombstoned
        while time.monotonic() < deadline and _views(settings)["u3"] is not None:
            time.sleep(0.5)
        assert _views(settings)["u3"] is None and _views(settings)["u1"] is not None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
