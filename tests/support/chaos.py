"""Chaos schedules against a live stack, in the spirit of faust's ``tests/stress/killer.py`` and
Kafka's bounce tests: N workers and a Parquet sink consume while the fixture's events (shuffled,
with duplicate deliveries) are produced in chunks, and a seeded schedule hits them:

- ``kill`` / ``kill-wipe``: SIGKILL a worker (and its plays stage), with or without wiping its
  local state (a lost disk), then start it again;
- ``term`` / ``term-wipe``: SIGTERM (a graceful stop, whatever batch it holds), then start again;
- ``stop-cont``: SIGSTOP a worker for 2-14 s (past the 10 s session timeout at times: the group
  moves on without it and it comes back as a zombie of an old generation), then SIGCONT;
- ``kill-in-recovery``: start a killed worker again and SIGKILL it while it recovers;
- ``kill-plays``: SIGKILL a worker's plays stage alone (the worker starts it again);
- ``kill-sink``: SIGKILL the Parquet sink, then start it again.

The oracle is independent of the code under test: the fixture's expected statements (the
spec's worked example, byte for byte) and the set of source offsets each sink must hold once.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Consumer, TopicPartition

from core.settings import Settings
from devstack.supervisor import Child, playlog_argv
from devstack.workers import SOURCE_TOPICS, WorkerProcess
from tests.support.fixture import PERIODS, expected_statement, fixture_events, produce
from topics.admin import create_topics
from topics.kafka_io import consumer_config
from topics.lag import committed_offsets as committed_with_retry
from topics.producer import EventProducer
from topics.topic_catalog import source_topics

ACTIONS = ("kill", "kill-wipe", "term", "term-wipe", "stop-cont", "kill-in-recovery", "kill-plays", "kill-sink")
SINK_GROUP = "chaos-sink-parquet"


def schedule(rng: random.Random, kills: int, actions: tuple[str, ...] = ACTIONS) -> list[str]:
    """Every action at least once (when ``kills`` allows), the rest drawn at random, shuffled."""
    plan = list(actions[:kills]) + [rng.choice(actions) for _ in range(max(0, kills - len(actions)))]
    rng.shuffle(plan)
    return plan


@dataclass
class Offsets:
    group: str
    rows: list[tuple[str, int, int | None, int]]  # topic (no prefix), partition, committed, end

    def behind(self) -> list[tuple[str, int, int | None, int]]:
        """Partitions whose committed offset is missing or short of the end offset."""
        return [r for r in self.rows if r[2] is None or r[2] < r[3]]


def committed_offsets(settings: Settings, group: str, topics: list[str]) -> Offsets:
    """The group's committed offset and the end offset of every partition of ``topics``."""
    p = settings.topic_prefix
    c = Consumer(consumer_config(settings, group))
    try:
        md = c.list_topics(timeout=10)
        tps, ends = [], {}
        for t in topics:
            for part in sorted(md.topics[p + t].partitions):
                _, hi = c.get_watermark_offsets(TopicPartition(p + t, part), timeout=10)
                ends[(p + t, part)] = hi
                tps.append(TopicPartition(p + t, part))
        rows = []
        for tp in committed_with_retry(c, tps, 10):
            rows.append((tp.topic[len(p):], tp.partition, tp.offset if tp.offset >= 0 else None, ends[(tp.topic, tp.partition)]))
        return Offsets(group, rows)
    finally:
        c.close()


@dataclass
class ChaosRun:
    settings: Settings
    root: Path
    seed: int
    workers: int = 3
    kills: int = 10
    actions: tuple[str, ...] = ACTIONS
    settle_timeout: float = 300.0
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.t0 = time.monotonic()
        self.archive = self.root / "archive"
        self.procs: list[WorkerProcess] = []
        self.sink: Child | None = None
        self.producer: EventProducer | None = None
        self.plan: list[str] = []

    # -- the parts --------------------------------------------------------------------------------
    def say(self, what: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f}s] {what}"
        self.log.append(line)
        print(line, file=sys.stderr, flush=True)  # pytest shows it for a failed run

    def produce(self, events: list[dict]) -> None:
        produce(self.settings, events, self.producer)

    def start_sink(self) -> Child:
        argv = playlog_argv("sink", "parquet", "--archive", str(self.archive), "--follow", "--group",
                            self.settings.topic_prefix + SINK_GROUP, "--batch-size", "400")
        self.sink = Child("sink", argv, self.settings.to_env(), self.root / "logs" / "sink.log").start()
        return self.sink

    def worker(self, name: str) -> WorkerProcess:
        return WorkerProcess(self.settings, self.root / "logs", name=name)

    def mark(self, w: Child, what: str) -> None:
        with open(w.log, "a") as f:
            f.write(f"\n===== chaos: {what} =====\n")

    def pause(self, lo: float, hi: float) -> None:
        time.sleep(self.rng.uniform(lo, hi))

    # -- the schedule -----------------------------------------------------------------------------
    def hit(self, action: str, w: WorkerProcess) -> None:
        if action in ("kill", "kill-wipe", "kill-in-recovery", "term", "term-wipe"):
            if action.startswith("kill"):
                w.kill()
            else:
                w.stop(timeout=60)  # SIGTERM, whatever batch it holds
            if action.endswith("-wipe"):
                shutil.rmtree(w.state_dir, ignore_errors=True)
            self.pause(0.2, 3)
            self.mark(w, f"start after {action}")
            w.start()
            if action == "kill-in-recovery":
                self.pause(1.5, 6)  # it is joining the group and loading its view and tables
                w.kill()
                shutil.rmtree(w.state_dir, ignore_errors=True)
                self.mark(w, "start after the kill in recovery")
                w.start()
        elif action == "stop-cont":
            w.signal(signal.SIGSTOP)
            self.pause(2, 14)
            w.signal(signal.SIGCONT)
        elif action == "kill-plays":
            pid = plays_stage_pid(w)
            if pid is None:
                self.say(f"  {w.name} has no plays stage running (restarting?): skipped")
                return
            import os

            os.kill(pid, signal.SIGKILL)
        elif action == "kill-sink":
            assert self.sink is not None
            self.sink.kill()
            self.pause(0.2, 3)
            self.sink.start()
        else:  # pragma: no cover - the schedule only holds ACTIONS
            raise ValueError(action)

    def run(self) -> ChaosReport:
        s = self.settings
        create_topics(s)
        self.producer = EventProducer(s)
        events = fixture_events()
        self.rng.shuffle(events)
        events += self.rng.sample(events, 500)  # duplicate deliveries
        chunks = [events[i :: self.kills + 1] for i in range(self.kills + 1)]
        self.produce(chunks[0])
        self.procs = [self.worker(f"w{i + 1}").start() for i in range(self.workers)]
        self.start_sink()
        self.pause(4, 9)
        self.plan = plan = schedule(self.rng, self.kills, self.actions)
        for k, action in enumerate(plan):
            w = self.rng.choice(self.procs)
            self.say(f"#{k + 1} {action} {w.name if action != 'kill-sink' else 'sink'}")
            self.hit(action, w)
            self.produce(chunks[k + 1])
            self.pause(1, 7)
        for w in self.procs:
            if not w.alive():
                raise AssertionError(f"{w.name} died on its own (exit {w.returncode}); see {w.log}")
        self.say("schedule done")
        return self.settle("after the schedule")

    def settle(self, when: str, workers: list[WorkerProcess] | None = None) -> ChaosReport:
        """Wait until every group has committed the end of every partition and the view holder's
        statements equal the oracle; the report says what was still wrong at the deadline."""
        workers = workers if workers is not None else self.procs
        deadline = time.monotonic() + self.settle_timeout
        report = ChaosReport(when)
        while True:
            report = self.check(when, workers)
            if report.ok or time.monotonic() > deadline:
                break
            time.sleep(2)
        self.say(f"{when}: {'ok' if report.ok else 'NOT ok'} ({report.summary()})")
        return report

    def check(self, when: str, workers: list[WorkerProcess]) -> ChaosReport:
        s = self.settings
        r = ChaosReport(when)
        r.offsets = [
            committed_offsets(s, f"{s.topic_prefix}worker", [t for t in SOURCE_TOPICS if t != "listening"]),
            committed_offsets(s, f"{s.topic_prefix}plays", ["listening"]),
        ]
        if self.sink is not None:
            r.offsets.append(committed_offsets(s, s.topic_prefix + SINK_GROUP, [t.name for t in source_topics()]))
        for w in workers:
            st = w.status()
            if st and st.get("owner"):
                try:
                    r.statements = {p: w.statement(p) for p in PERIODS}
                except OSError:
                    continue
                r.owner = w.name
                break
        return r


@dataclass
class ChaosReport:
    when: str
    offsets: list[Offsets] = field(default_factory=list)
    statements: dict[str, str] = field(default_factory=dict)
    owner: str | None = None

    @property
    def statements_ok(self) -> bool:
        return bool(self.statements) and all(self.statements.get(p) == expected_statement(p) for p in PERIODS)

    @property
    def ok(self) -> bool:
        return self.statements_ok and not any(o.behind() for o in self.offsets)

    def summary(self) -> str:
        parts = [f"owner={self.owner}", f"statements_ok={self.statements_ok}"]
        for o in self.offsets:
            for t, p, c, e in o.behind():
                parts.append(f"{o.group} {t}[{p}] committed={c} end={e}")
        for p, text in self.statements.items():
            if text != expected_statement(p):
                want, got = set(expected_statement(p).splitlines()), set(text.splitlines())
                parts.append(f"{p}: {len(want - got)} line(s) missing, {len(got - want)} wrong")
        return "; ".join(parts)


def plays_stage_pid(w: WorkerProcess) -> int | None:
    """The pid of the worker's plays stage (its multiprocessing child running plays_stage)."""
    if not w.alive():
        return None
    for child in _children(w.pid):
        try:
            cmd = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing" in cmd and b"resource_tracker" not in cmd:
            return child
    return None


def _children(pid: int | None) -> list[int]:
    if pid is None:
        return []
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def archive_keys(root: Path) -> list[tuple[str, int, int]]:
    files = sorted(root.rglob("*.parquet"))
    if not files:
        return []
    t = pa.concat_tables([pq.read_table(f, columns=["topic", "partition", "offset"]) for f in files])
    return sorted(zip(t["topic"].to_pylist(), t["partition"].to_pylist(), t["offset"].to_pylist(), strict=True))


def replay_diff_live(settings: Settings, workers: list[WorkerProcess], out: Path) -> subprocess.CompletedProcess:
    env = {**settings.to_env(), "PLAYLOG_WORKER_URLS": ",".join(w.url for w in workers)}
    return subprocess.run([*playlog_argv("replay", "royalties"), "--period", "2026-05", "--source", "kafka",
                           "--out", str(out), "--diff-live"], env=env, capture_output=True, text=True, timeout=300)
