"""``playlog up``: the whole stack from a fresh data dir, found by the verbs that talk to it, and
stopped with no process left behind, on SIGTERM and when a child dies.

Every process ``up`` starts (broker JVM, workers and their plays-stage children, CDN, API) is
collected from /proc as a descendant of the ``up`` process before it is stopped; afterwards none
of them may be running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack.supervisor import free_port

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures"
PLAYLOG = [sys.executable, "-m", "playlog"]


def _env(data_dir: Path, workers: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYLOG_")}
    env.update(
        PLAYLOG_DATA_DIR=str(data_dir),
        PLAYLOG_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
        PLAYLOG_KAFKA_CONTROLLER_PORT=str(free_port()),
        PLAYLOG_API_PORT=str(free_port()),
        PLAYLOG_CDN_PORT=str(free_port()),
        PLAYLOG_REGISTRY_PORT=str(free_port()),
        PLAYLOG_WORKER_URLS=",".join(f"http://127.0.0.1:{free_port()}" for _ in range(workers)),
        PLAYLOG_TOPIC_PREFIX="up.",
    )
    return env


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        out.setdefault(ppid, []).append(int(d.name))
    return out


def descendants(pid: int) -> set[int]:
    tree = _children()
    seen: set[int] = set()
    todo = [pid]
    while todo:
        for c in tree.get(todo.pop(), []):
            if c not in seen:
                seen.add(c)
                todo.append(c)
    return seen


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"


def start_up(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "up.log"
    out = open(log, "wb")  # noqa: SIM115 - closed by the test's end
    proc = subprocess.Popen([*PLAYLOG, "up", *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                            cwd=tmp_path, start_new_session=True)
    return proc, log


def wait_ready(proc: subprocess.Popen, log: Path, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "stack ready" in text:
            return text
        if proc.poll() is not None:
            pytest.fail(f"playlog up exited with {proc.returncode} before it was ready:\n{text[-3000:]}")
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"playlog up not ready within {timeout}s:\n{log.read_text(errors='replace')[-3000:]}")


def test_up_runs_the_stack_the_other_verbs_find_it_and_sigterm_leaves_no_process(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _env(data, workers=2)
    proc, log = start_up(tmp_path, env, "--workers", "2")
    try:
        text = wait_ready(proc, log)
        # it said where each part listens
        for part in ("broker: ready on " + env["PLAYLOG_BOOTSTRAP_SERVERS"], "worker w1: ready", "worker w2: ready",
                     f"cdn: ready on http://127.0.0.1:{env['PLAYLOG_CDN_PORT']}",
                     f"api: ready on http://127.0.0.1:{env['PLAYLOG_API_PORT']}",
                     f"registry: ready on http://127.0.0.1:{env['PLAYLOG_REGISTRY_PORT']}"):
            assert part in text, text
        assert (data / "kafka" / "logs" / "meta.properties").exists()  # the broker's data is under the data dir
        stack = json.loads((data / "up" / "stack.json").read_text())
        assert stack["workers"] == env["PLAYLOG_WORKER_URLS"].split(",")
        assert stack["schema_registry"] == f"http://127.0.0.1:{env['PLAYLOG_REGISTRY_PORT']}"
        # each worker has its own state dir
        assert (data / "worker" / "up-w1").is_dir() and (data / "worker" / "up-w2").is_dir()

        # the verbs that talk to the stack find it from the same environment
        produced = subprocess.run([*PLAYLOG, "produce", str(FIXTURES / "royalties-sample.jsonl")], env=env,
                                  capture_output=True, text=True, timeout=120)
        assert produced.returncode == 0, produced.stderr
        found = {k: v for k, v in env.items() if k != "PLAYLOG_WORKER_URLS"}  # only what `up` recorded
        dead = f"http://127.0.0.1:{free_port()}"
        with_dead = {**env, "PLAYLOG_WORKER_URLS": ",".join([dead, *stack["workers"]])}  # a dead one first
        want = (FIXTURES / "royalties-sample-2026-05.csv").read_bytes()
        deadline = time.monotonic() + 180
        got = b""
        while time.monotonic() < deadline:
            out = tmp_path / "may.csv"
            r = subprocess.run([*PLAYLOG, "royalties", "--period", "2026-05", "--out", str(out)], env=found,
                               capture_output=True, text=True, timeout=90)
            if r.returncode == 0 and (got := out.read_bytes()) == want:
                break
            time.sleep(2)
        assert got == want, "the live statement through `up` differs from the fixture"
        r = subprocess.run([*PLAYLOG, "royalties", "--period", "2026-05", "--out", str(tmp_path / "b.csv")],
                           env=with_dead, capture_output=True, text=True, timeout=90)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "b.csv").read_bytes() == want
        token = subprocess.run([*PLAYLOG, "token", "u-1"], env=env, capture_output=True, text=True, timeout=60)
        assert token.returncode == 0 and token.stdout.strip().count(".") == 2

        family = descendants(proc.pid)
        cmds = " | ".join(cmdline(p) for p in family)
        assert "kafka.Kafka" in cmds and cmds.count(" worker ") >= 2 and " api" in cmds and " cdn" in cmds, cmds
        assert " registry" in cmds, cmds
        assert any("multiprocessing" in cmdline(p) for p in family), "the workers' plays-stage children"
    finally:
        family = descendants(proc.pid) if proc.poll() is None else set()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(120)
    assert code == 0, log.read_text()[-2000:]
    assert "stopped" in log.read_text()
    left = [f"{p}: {cmdline(p)}" for p in family if running(p)]
    assert not left, left
    assert not (data / "up" / "stack.json").exists()


def test_up_exits_non_zero_naming_the_child_that_died_and_stops_the_rest(tmp_path: Path) -> None:
    env = _env(tmp_path / "data", workers=1)
    proc, log = start_up(tmp_path, env, "--workers", "1")
    try:
        wait_ready(proc, log)
        family = descendants(proc.pid)
        cdn = [p for p in family if cmdline(p).rstrip().endswith("playlog cdn")]
        assert len(cdn) == 1, [cmdline(p) for p in family]
        os.kill(cdn[0], signal.SIGKILL)
        code = proc.wait(120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert code == 1, text[-2000:]
    assert "cdn exited with code -9" in text, text[-2000:]
    left = [f"{p}: {cmdline(p)}" for p in family if running(p)]
    assert not left, left


def test_up_without_a_broker_and_nothing_answering_exits_2(tmp_path: Path) -> None:
    env = _env(tmp_path / "data", workers=1)
    r = subprocess.run([*PLAYLOG, "up", "--no-broker"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "no Kafka cluster answers at " + env["PLAYLOG_BOOTSTRAP_SERVERS"] in r.stderr
    assert "Traceback" not in r.stderr


def test_up_with_an_unknown_sink_is_a_usage_error(tmp_path: Path) -> None:
    env = _env(tmp_path / "data", workers=1)
    r = subprocess.run([*PLAYLOG, "up", "--sinks", "duckdb,mysql"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "mysql" in r.stderr, r.stderr
    assert not (tmp_path / "data" / "kafka").exists()  # nothing was started


def test_up_runs_the_feature_store_batch_on_its_schedule(tmp_path: Path) -> None:
    """PLAYLOG_BATCH_RECS_EVERY=2: the stack (no sink at all) runs ``playlog batch recs`` by itself and
    view.popularity ends up with every stream of the fixture (a play whose most ms_played is 30 s or more)."""
    from core.settings import load
    from topics.consumer import iter_records

    data = tmp_path / "data"
    env = {**_env(data, workers=0), "PLAYLOG_BATCH_RECS_EVERY": "2"}
    proc, log = start_up(tmp_path, env, "--workers", "0", "--no-api", "--no-cdn", "--no-registry")
    streams = {}
    for line in (FIXTURES / "royalties-sample.jsonl").read_bytes().splitlines():
        ev = json.loads(line)
        if ev["type"] in ("play.progress", "play.skipped", "play.completed"):
            streams[ev["play_id"]] = max(streams.get(ev["play_id"], 0), ev["ms_played"])
    want = sum(ms >= 30_000 for ms in streams.values())
    try:
        text = wait_ready(proc, log)
        assert "batch recs: every 2s" in text, text
        produced = subprocess.run([*PLAYLOG, "produce", str(FIXTURES / "royalties-sample.jsonl")], env=env,
                                  capture_output=True, text=True, timeout=120)
        assert produced.returncode == 0, produced.stderr
        settings = load(env)
        deadline = time.monotonic() + 240
        total = 0
        while time.monotonic() < deadline and total != want:
            docs: dict[bytes, dict | None] = {}
            for r in iter_records(settings, [settings.topic_prefix + "view.popularity"]):
                docs[r.key] = None if r.value is None else json.loads(r.value)
            total = sum(d["streams"] for d in docs.values() if d)
            time.sleep(2)
        assert total == want, (total, want, (data / "logs" / "batch-recs.log").read_text()[-2000:])
        assert "recs as of" in (data / "logs" / "batch-recs.log").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(120)
    assert code == 0, log.read_text()[-2000:]
