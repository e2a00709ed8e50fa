"""Bounded recovery: a fresh worker (its disk wiped) loads the royalty view from the newest
checkpoint and folds only the tail of ``royalty.inputs`` after it; a torn or corrupt checkpoint
falls back to the older slot or to the whole log. The statements stay the fixture's."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path

from confluent_kafka import Producer

from devstack.workers import WorkerProcess, wait_caught_up
from tests.support.fixture import PERIODS, expected_statement, fixture_events, produce
from topics.admin import create_topics
from topics.consumer import iter_records
from topics.kafka_io import producer_config
from worker import checkpoint


def _statements_ok(w: WorkerProcess) -> bool:
    return all(w.statement(p) == expected_statement(p) for p in PERIODS)


def _wait_checkpoint(w: WorkerProcess, covering: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = w.status() or {}
        if st.get("checkpoint") and st["checkpoint"]["through"] >= covering:
            return st["checkpoint"]
        time.sleep(0.5)
    raise AssertionError(f"no checkpoint covering offset {covering} within {timeout}s: {w.status()}; see {w.log}")


def _inputs_end(settings) -> int:
    return checkpoint.end_offset(settings, checkpoint.INPUTS)


def test_a_fresh_worker_loads_the_checkpoint_and_folds_only_the_tail(kafka_env, tmp_path: Path) -> None:
    settings = replace(kafka_env, checkpoint_seconds=2)
    create_topics(settings)
    events = fixture_events()
    first, second = events[: len(events) * 2 // 3], events[len(events) * 2 // 3 :]
    produce(settings, first)
    w = WorkerProcess(settings, tmp_path).start()
    try:
        wait_caught_up(settings, [w], timeout=180)
        ckpt = _wait_checkpoint(w, _inputs_end(settings))
        produce(settings, second)
        wait_caught_up(settings, [w], timeout=180)
        total = _inputs_end(settings)
        assert total > ckpt["through"]  # the second part is only in the log, after the checkpoint
        w.kill()
        shutil.rmtree(w.state_dir)  # the disk is lost
        w = WorkerProcess(settings, tmp_path, name="w1").start()
        wait_caught_up(settings, [w], timeout=180)
        loaded = w.status()["view_loaded"]
        # the view came from a checkpoint (this one or a newer one) plus the records after it only
        assert loaded["checkpoint_through"] is not None and loaded["checkpoint_through"] >= ckpt["through"]
        assert loaded["tail_records"] == total - loaded["checkpoint_through"] < total
        assert _statements_ok(w)
    finally:
        w.stop()


def test_torn_and_corrupt_checkpoints_fall_back(kafka_env, tmp_path: Path) -> None:
    settings = replace(kafka_env, checkpoint_seconds=2)
    create_topics(settings)
    produce(settings, fixture_events())
    w = WorkerProcess(settings, tmp_path).start()
    try:
        wait_caught_up(settings, [w], timeout=180)
        good = _wait_checkpoint(w, _inputs_end(settings))
        w.kill()
        # a newer checkpoint in the other slot whose writer died after its manifest's first chunk was
        # replaced by garbage, and a manifest for a slot whose chunks never came
        other = checkpoint.SLOTS[1] if good["slot"] == checkpoint.SLOTS[0] else checkpoint.SLOTS[0]
        bad = checkpoint.Manifest("torn", other, 3, good["through"] + 10**6, 1, time.time())
        p = Producer(producer_config(settings))
        name = settings.topic_prefix + checkpoint.TOPIC
        p.produce(name, key=f"{other}:0".encode(), value=b"torn\nnot zlib at all", partition=0)
        p.produce(name, key=f"manifest:{other}".encode(), value=bad.to_json(), partition=0)
        p.produce(name, key=b"manifest:Z", value=b"{garbage", partition=0)
        p.flush(30)
        shutil.rmtree(w.state_dir)
        w = WorkerProcess(settings, tmp_path, name="w1").start()
        wait_caught_up(settings, [w], timeout=180)
        assert w.status()["view_loaded"]["checkpoint_through"] == good["through"]  # the whole older one
        assert _statements_ok(w)
        # every checkpoint garbage: the view is rebuilt from royalty.inputs offset 0
        w.kill()
        for slot in checkpoint.SLOTS:
            p.produce(name, key=f"{slot}:0".encode(), value=b"x\ngarbage", partition=0)
        p.flush(30)
        shutil.rmtree(w.state_dir)
        w = WorkerProcess(settings, tmp_path, name="w1").start()
        wait_caught_up(settings, [w], timeout=180)
        loaded = w.status()["view_loaded"]
        assert loaded["checkpoint_through"] is None and loaded["tail_records"] == _inputs_end(settings)
        assert _statements_ok(w)
        keys = {r.key for r in iter_records(settings, [name])}
        assert f"manifest:{good['slot']}".encode() in keys
    finally:
        w.stop()
