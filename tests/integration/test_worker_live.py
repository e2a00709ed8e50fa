"""The live pipeline on the real broker: events produced -> views and the live statement correct;
a worker killed with SIGKILL mid-stream and restarted -> the same statement (nothing lost, nothing
counted twice)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack.workers import WorkerProcess, source_lag
from devstack.workers import wait_caught_up as _wait
from schemas.codec import default_codec
from tests.support.fixture import expected_statement, fixture_events, produce
from tests.unit.test_royalties_props import oracle_streams
from topics.admin import create_topics
from topics.consumer import iter_records
from topics.producer import EventProducer


def wait_caught_up(settings, worker, timeout: float = 180.0) -> None:
    _wait(settings, [worker], timeout)

codec = default_codec()
_fixture_events = fixture_events
_produce = produce
_expected = expected_statement


def test_live_statement_and_views(kafka_env, tmp_path: Path) -> None:
    create_topics(kafka_env)
    extra = [
        {"type": "user.registered", "event_id": "u-1", "occurred_at": "2026-05-01T00:00:00Z", "user_id": "u001",
         "country": "DE", "product": "premium", "display_name": "Ada"},
        {"type": "playlist.created", "event_id": "pl-1", "occurred_at": "2026-05-01T00:00:00Z", "playlist_id": "pl1",
         "owner_id": "u001", "name": "Mix", "collaborative": False, "public": True},
        {"type": "playlist.tracks_added", "event_id": "pl-2", "occurred_at": "2026-05-01T00:00:01Z", "playlist_id": "pl1",
         "user_id": "u001", "track_ids": ["t001", "t002"], "position": None},
        {"type": "playlist.tracks_added", "event_id": "pl-3", "occurred_at": "2026-05-01T00:00:02Z", "playlist_id": "pl1",
         "user_id": "u999", "track_ids": ["t003"], "position": None},  # not the owner: dead-lettered
    ]
    _produce(kafka_env, _fixture_events() + [codec.from_json(e) for e in extra])
    # and one record that is not an event at all
    p = EventProducer(kafka_env)
    p.produce_raw(kafka_env.topic_prefix + "listening", b"not avro", key="u001")
    p.flush()
    w = WorkerProcess(kafka_env, tmp_path).start()
    try:
        wait_caught_up(kafka_env, w)
        assert w.statement("2026-04") == _expected("2026-04")
        assert w.statement("2026-05") == _expected("2026-05")
        # the audit: replay from the topics with the same folds, diffed against the live view
        env = {**os.environ, "PLAYLOG_WORKER_URLS": w.url}
        out = tmp_path / "replay.csv"
        proc = subprocess.run([sys.executable, "-m", "playlog.cli", "replay", "royalties", "--period", "2026-05",
                               "--source", "kafka", "--out", str(out), "--diff-live"],
                              env=env, capture_output=True, text=True, timeout=300)
        # exit 3: the one undecodable record on the listening topic is listed; the statement still
        # matches the live view (a difference would be exit 1, which wins over 3)
        assert proc.returncode == 3, proc.stderr
        assert proc.stdout == "" and "replay matches the live statement" in proc.stderr
        bad = [line for line in proc.stderr.splitlines() if line.startswith("bad input: ")]
        assert len(bad) == 1 and bad[0].startswith(f"bad input: {kafka_env.topic_prefix}listening["), bad
        assert out.read_text() == _expected("2026-05")
        live = subprocess.run([sys.executable, "-m", "playlog.cli", "royalties", "--period", "2026-04",
                               "--out", str(tmp_path / "live.csv")], env=env, capture_output=True, text=True, timeout=120)
        assert live.returncode == 0, live.stderr
        assert (tmp_path / "live.csv").read_text() == _expected("2026-04")
        # the qualifying streams (compacted, keyed by play_id) and the published statements
        # expected: the tests' literal reading of spec/royalties.md, not the folds the worker runs
        want = {s[1] for per in ("2026-04", "2026-05", "2026-06") for s in oracle_streams(_fixture_events(), per)}
        assert want
        deadline = time.monotonic() + 30
        while True:
            latest: dict[str, bytes | None] = {}
            for r in iter_records(kafka_env, [kafka_env.topic_prefix + "streams"]):
                latest[r.key.decode()] = r.value
            live_streams = {k for k, v in latest.items() if v is not None}
            statements = {r.key.decode(): r.value.decode()
                          for r in iter_records(kafka_env, [kafka_env.topic_prefix + "view.royalties"])}
            if (live_streams == want and statements.get("2026-05") == _expected("2026-05")) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert live_streams == want
        assert statements["2026-05"] == _expected("2026-05")
        views = {}
        for r in iter_records(kafka_env, [kafka_env.topic_prefix + "view.playlists", kafka_env.topic_prefix + "view.users"]):
            views[(r.topic.rsplit(".", 1)[1], r.key.decode())] = json.loads(r.value)
        pl = views[("playlists", "pl1")]
        assert [t["track_id"] for t in pl["tracks"]] == ["t001", "t002"]
        assert views[("users", "u001")]["country"] == "DE"
        dead = list(iter_records(kafka_env, [kafka_env.topic_prefix + "deadletter"]))
        reasons = [dict(d.headers)["reason"].decode() for d in dead]
        assert any("u999" in r or "owner" in r or "collaborat" in r for r in reasons), reasons
        assert any(dict(d.headers)["source.topic"] == (kafka_env.topic_prefix + "listening").encode()
                   and d.value == b"not avro" for d in dead)
    finally:
        w.stop()


@pytest.mark.parametrize("wipe_local_state", [False, True], ids=["rocksdb-kept", "rocksdb-wiped"])
def test_sigkill_mid_stream_then_restart_gives_the_same_statement(kafka_env, tmp_path: Path, wipe_local_state: bool) -> None:
    create_topics(kafka_env)
    events = _fixture_events()
    rng = random.Random(42)
    rng.shuffle(events)
    events += rng.sample(events, 500)  # duplicate deliveries
    first, second = events[: len(events) // 2], events[len(events) // 2 :]
    _produce(kafka_env, first)
    w = WorkerProcess(kafka_env, tmp_path).start()
    try:
        deadline = time.monotonic() + 120
        st = None
        while time.monotonic() < deadline:
            st = w.status()
            if st and st.get("royalty_facts", 0) > 200:
                break
            assert w.alive(), f"worker exited with code {w.proc.returncode} before the kill; see {w.log}"
            time.sleep(0.2)
        else:
            pytest.fail(f"the worker never folded 200 royalty facts within 120 s (status {st}); see {w.log}")
        _produce(kafka_env, second[:1000])
        w.kill()  # SIGKILL mid-stream: no clean shutdown, no final commit; raises if it had already died
        assert w.proc.returncode == -signal.SIGKILL
        # mid-stream: it had folded some records (st, above) and not all of those produced were committed
        lag_at_kill = source_lag(kafka_env)  # committed offsets of a dead group do not move
        assert sum(lag_at_kill.values()) > 0, f"everything produced was already committed: not mid-stream ({lag_at_kill})"
        if wipe_local_state:
            shutil.rmtree(kafka_env.data_dir / "worker", ignore_errors=True)  # recover from the changelog alone
        _produce(kafka_env, second[1000:])
        w = WorkerProcess(kafka_env, tmp_path, name="w1").start()
        wait_caught_up(kafka_env, w, timeout=240)
        assert w.statement("2026-04") == _expected("2026-04")
        assert w.statement("2026-05") == _expected("2026-05")
    finally:
        w.stop()


def test_sigterm_while_agents_hold_batches_loses_nothing(kafka_env, tmp_path: Path) -> None:
    """A graceful stop (SIGTERM) while the agents hold batches they have not processed (stalled by
    fault injection after their first batch) must not commit those batches: after the restart the
    statement is exact. (Before worker/app.py ``finish_or_hold`` acked batches itself, Faust's
    ``Stream.on_stop`` acked the held batch and the last commit took it: 3 runs of 4 failed here
    with the finance partition committed and every amount of 2026-05 at 0.)"""
    from dataclasses import replace

    create_topics(kafka_env)
    settings = replace(kafka_env, worker_fault="stall_after:1")
    events = _fixture_events()
    random.Random(5).shuffle(events)
    _produce(settings, events)
    w = WorkerProcess(settings, tmp_path).start()
    try:
        marker = w.state_dir / "fault-stalled"
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert w.alive() and time.monotonic() < deadline, f"the agents never stalled; see {w.log}"
            time.sleep(0.2)
        time.sleep(4)  # the other agents go on and commit (every second)

        def stalled_lag() -> dict[str, int]:  # the source agents' topics (the royalty stages go on)
            return {t: v for t, v in source_lag(settings).items() if not t.endswith("listening") and ".royalty." not in t}

        held = stalled_lag()
        assert sum(held.values()) > 0, held  # batches held, not committed
        w.stop(timeout=60)  # SIGTERM: Faust's graceful stop, with the stalled batches in the agents' hands
        assert w.proc.returncode in (0, -signal.SIGTERM), w.proc.returncode
        assert stalled_lag() == held  # the stop committed nothing the agents had not processed
        w = WorkerProcess(settings, tmp_path, name="w1").start()  # the fault fires once per state dir
        wait_caught_up(settings, w, timeout=240)
        assert w.statement("2026-04") == _expected("2026-04")
        assert w.statement("2026-05") == _expected("2026-05")
    finally:
        w.stop()
