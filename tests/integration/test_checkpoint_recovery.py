"""Bounded recovery: a fresh worker (its disk wiped) loads each royalty view (the join and shard
partitions, worker/royalty.py) from its newest checkpoint and folds only the tail of its partition
after it; a torn or corrupt checkpoint falls back to the older slot or to the whole partition. The
statements stay the fixture's."""

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
from topics.topic_catalog import topic_spec
from worker import checkpoint
from worker.royalty import JOIN_TOPIC, SHARD_TOPIC


def _statements_ok(w: WorkerProcess) -> bool:
    return all(w.statement(p) == expected_statement(p) for p in PERIODS)


def _ends(settings) -> dict[str, int]:
    """End offset of every join and shard partition that has records, by view name."""
    out = {}
    for stage, topic in (("join", JOIN_TOPIC), ("shard", SHARD_TOPIC)):
        for p in range(topic_spec(topic).partitions):
            if end := checkpoint.end_offset(settings, topic, p):
                out[f"{stage}-{p}"] = end
    return out


def _wait_checkpoints(w: WorkerProcess, ends: dict[str, int], timeout: float = 120) -> dict[str, dict]:
    """Until every view with records has a checkpoint covering its partition's end offset."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        views = (w.status() or {}).get("views", {})
        got = {n: v["checkpoint"] for n, v in views.items() if v.get("checkpoint")}
        if all(n in got and got[n]["through"] >= end for n, end in ends.items()):
            return got
        time.sleep(0.5)
    raise AssertionError(f"no checkpoints covering {ends} within {timeout}s: {w.status()}; see {w.log}")


def _loaded(w: WorkerProcess) -> dict[str, dict]:
    return {n: v["loaded"] for n, v in w.status()["views"].items()}


def test_a_fresh_worker_loads_the_checkpoints_and_folds_only_the_tails(kafka_env, tmp_path: Path) -> None:
    settings = replace(kafka_env, checkpoint_seconds=2)
    create_topics(settings)
    events = fixture_events()
    first, second = events[: len(events) * 2 // 3], events[len(events) * 2 // 3 :]
    produce(settings, first)
    w = WorkerProcess(settings, tmp_path).start()
    try:
        wait_caught_up(settings, [w], timeout=180)
        ckpts = _wait_checkpoints(w, _ends(settings))
        produce(settings, second)
        wait_caught_up(settings, [w], timeout=180)
        ends = _ends(settings)
        # the second part is only in the log, after the checkpoints
        assert sum(ends.values()) > sum(c["through"] for c in ckpts.values())
        w.kill()
        shutil.rmtree(w.state_dir)  # the disk is lost
        w = WorkerProcess(settings, tmp_path, name="w1").start()
        wait_caught_up(settings, [w], timeout=180)
        loaded = _loaded(w)
        for name, end in ends.items():
            # the view came from a checkpoint (this one or a newer one) plus the records after it only
            got = loaded[name]
            if name in ckpts:
                assert got["checkpoint_through"] is not None and got["checkpoint_through"] >= ckpts[name]["through"]
            # the tail: to the end offset when the view loaded (a join loaded earlier may have sent
            # its tail's decided plays again meanwhile: records after `end`, folded as a tail too)
            assert got["through"] >= end and got["tail_records"] == got["through"] - (got["checkpoint_through"] or 0)
        assert sum(loaded[n]["tail_records"] for n in ends) < sum(ends.values())
        assert _statements_ok(w)
    finally:
        w.stop()


def test_torn_and_corrupt_checkpoints_fall_back(kafka_env, tmp_path: Path) -> None:
    settings = replace(kafka_env, checkpoint_seconds=2)
    create_topics(settings)
    produce(settings, fixture_events())
    w = WorkerProcess(settings, tmp_path).start()
    view = "shard-0"
    try:
        wait_caught_up(settings, [w], timeout=180)
        ends = _ends(settings)
        good = _wait_checkpoints(w, ends)[view]
        w.kill()
        # a newer checkpoint in the other slot whose writer died after its manifest's first chunk was
        # replaced by garbage, and a manifest for a slot whose chunks never came
        other = checkpoint.SLOTS[1] if good["slot"] == checkpoint.SLOTS[0] else checkpoint.SLOTS[0]
        bad = checkpoint.Manifest("torn", other, 3, good["through"] + 10**6, 1, time.time())
        p = Producer(producer_config(settings))
        name = settings.topic_prefix + checkpoint.TOPIC
        p.produce(name, key=f"{view}/{other}:0".encode(), value=b"torn\nnot zlib at all", partition=0)
        p.produce(name, key=f"{view}/manifest:{other}".encode(), value=bad.to_json(), partition=0)
        p.produce(name, key=f"{view}/manifest:Z".encode(), value=b"{garbage", partition=0)
        p.flush(30)
        shutil.rmtree(w.state_dir)
        w = WorkerProcess(settings, tmp_path, name="w1").start()
        wait_caught_up(settings, [w], timeout=180)
        assert _loaded(w)[view]["checkpoint_through"] == good["through"]  # the whole older one
        assert _statements_ok(w)
        # every checkpoint of the view garbage: it is rebuilt from its partition's offset 0
        w.kill()
        for slot in checkpoint.SLOTS:
            p.produce(name, key=f"{view}/{slot}:0".encode(), value=b"x\ngarbage", partition=0)
        p.flush(30)
        shutil.rmtree(w.state_dir)
        w = WorkerProcess(settings, tmp_path, name="w1").start()
        wait_caught_up(settings, [w], timeout=180)
        loaded = _loaded(w)[view]
        assert loaded["checkpoint_through"] is None and loaded["tail_records"] == loaded["through"] >= ends[view]
        assert _statements_ok(w)
        keys = {r.key for r in iter_records(settings, [name])}
        assert f"{view}/manifest:{good['slot']}".encode() in keys
    finally:
        w.stop()
