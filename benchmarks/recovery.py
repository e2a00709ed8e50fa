"""``playlog bench recovery``: how long a worker takes to hold the live royalty view again.

For each N (plays), on a private broker:

1. a catalog of ``tracks`` tracks (ingest + rights in 8 countries) and the pools of one period are
   produced as events to their topics (the worker forwards them as facts); N synthetic play
   summaries are produced as packed facts (500 per record, as the plays stage sends them) straight
   to ``royalty.inputs``, pre-packed, all of it before the worker starts, so the producer is not
   what is measured;
2. **build**: worker ``w1`` (``--plays-stage none``) starts on an empty state and folds everything:
   from its start until ``/status`` says owner with every fact and the ``worker`` group has no lag;
3. **restart, state kept**: SIGKILL, start again with the same name (RocksDB kept): from the start
   until owner with every fact;
4. **fresh worker**: SIGKILL, local state removed (a lost disk), start again, until owner with
   every fact. The worker log (``--loglevel info``) splits the time into start-up (process, group
   join, assignment), Faust's changelog restore, and loading the view, for either design of
   worker/app.py (detected after the build):

   - *table*: the view is rebuilt from the changelog-backed table ``royalty_facts`` ("royalty view
     rebuilt from N stored facts"): restore of that changelog, then the rebuild;
   - *checkpoint* (worker/checkpoint.py): the view is loaded from the newest checkpoint on
     ``royalty.checkpoints`` plus the tail of ``royalty.inputs`` ("royalty view loaded in ..."); the
     bench first waits for a checkpoint that covers every input (the steady state);
5. **baseline**: raw consumption (confluent-kafka, no decode) of what the recovery reads, from the
   same broker: the ``royalty_facts`` changelog beginning to end (table), or the checkpoint topic
   plus the tail of ``royalty.inputs`` after the checkpoint (checkpoint); and of all of
   ``royalty.inputs`` (what a rebuild with no state at all reads).

Times are wall seconds from the process start (``Popen``) to the first ``/status`` poll (every
0.5 s) that shows the condition; the log split has the log's millisecond resolution. The worker's
peak RSS (``VmHWM``), its RocksDB state size and the broker's log size are reported with them.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from core.errors import PlaylogError
from core.settings import Settings
from topics.topic_catalog import topic_spec

START_MS = 1_779_000_000_000  # 2026-05-17: the period of the pools (2026-05)
DAY_MS = 86_400_000
POLL = 0.5
CHUNK = 50_000  # facts generated and produced per step (bounded memory in this process)


# -- input ------------------------------------------------------------------------------------------
def _period_span(ms: int) -> tuple[int, int]:
    """[first ms, last ms + 1) of the UTC month of ``ms``."""
    from datetime import UTC

    d = datetime.fromtimestamp(ms / 1000, UTC)
    lo = datetime(d.year, d.month, 1, tzinfo=UTC)
    hi = datetime(d.year + (d.month == 12), d.month % 12 + 1, 1, tzinfo=UTC)
    return int(lo.timestamp() * 1000), int(hi.timestamp() * 1000)


def play_records(n: int, n_tracks: int, start_ms: int = START_MS, seed: int = 5,
                 parts: int = 1) -> Iterator[list[tuple[int, bytes]]]:
    """N play summaries as packed ``royalty.inputs`` records ``(partition, value)``, each on the
    partition of its play_id among ``parts`` (as the plays stage sends them), a chunk at a time.

    Plays of users ``u0..u(N/20)`` over tracks ``bt00000..`` (the catalog of
    :func:`benchmarks.loadgen.catalog_events`), play_time anywhere in the period of ``start_ms``,
    30-200 s listened, from the start and ended: unique play_id and source_event_id."""
    from benchmarks.loadgen import COUNTRIES
    from processors.batches import fact_of_summary
    from processors.plays import PlaySummary

    rng = random.Random(seed)
    users = max(1, n // 20)
    lo, hi = _period_span(start_ms)
    hi -= 3_600_000
    facts: list[tuple[str, bytes]] = []
    for i in range(n):
        u = rng.randrange(users + 1)
        s = PlaySummary(
            play_id=f"rp{i:09d}", user_id=f"u{u}", track_id=f"bt{rng.randrange(n_tracks):05d}",
            country=COUNTRIES[u % len(COUNTRIES)], product="premium" if u % 3 else "free",
            play_time=rng.randrange(lo, hi), ms=rng.randrange(30_000, 200_001), from_start=True,
            source_event_id=f"rp{i:09d}-s", ended=True,
        )
        facts.append(fact_of_summary(s))
        if len(facts) >= CHUNK:
            yield _packed_by_part(facts, parts)
            facts = []
    if facts:
        yield _packed_by_part(facts, parts)


def _packed_by_part(facts: list[tuple[str, bytes]], parts: int) -> list[tuple[int, bytes]]:
    from processors.batches import pack_facts
    from processors.royalty_parts import part_of

    by: dict[int, list[tuple[str, bytes]]] = {}
    for k, raw in facts:
        by.setdefault(part_of(k[2:], parts), []).append((k, raw))
    return [(p, packed) for p, fs in sorted(by.items()) for packed in pack_facts(fs)]


def produce_inputs(settings: Settings, n: int, tracks: int) -> dict:
    """The catalog and pools as events, the plays as packed facts; returns counts and sizes."""
    from benchmarks.loadgen import catalog_events, pool_events
    from core.timefmt import period_of
    from topics.producer import EventProducer

    head = catalog_events(tracks, START_MS) + pool_events(period_of(START_MS), START_MS)
    p = EventProducer(settings)
    t0 = time.perf_counter()
    for ev in head:
        p.produce(ev)
    records = nbytes = 0
    topic = settings.topic_prefix + "royalty.inputs"
    for chunk in play_records(n, tracks, parts=topic_spec("royalty.inputs").partitions):
        for part, raw in chunk:
            p.produce_raw(topic, raw, key=b"plays", partition=part)
            records += 1
            nbytes += len(raw)
        p.flush(300)
    p.flush(300)
    return {"head_events": len(head), "input_records": records, "input_bytes": nbytes,
            "generate_and_produce_s": time.perf_counter() - t0}


# -- measuring a worker -------------------------------------------------------------------------------
def _proc_status(pid: int | None) -> dict[str, int]:
    """VmRSS / VmHWM of a process, in bytes (empty when it is gone)."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    except (OSError, ValueError):
        pass
    return out


def _du(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512  # on disk (indexes are sparse)
            except OSError:
                pass
    return total


def _topic_sizes(kafka_logs: Path, prefix: str) -> dict[str, int]:
    """Bytes on disk per topic (its partition directories) of the broker's log dir."""
    sizes: dict[str, int] = {}
    for d in kafka_logs.iterdir() if kafka_logs.is_dir() else ():
        m = re.fullmatch(r"(.+)-(\d+)", d.name)
        if d.is_dir() and m and m.group(1).startswith(prefix):
            sizes[m.group(1)] = sizes.get(m.group(1), 0) + _du(d)
    return sizes


def _mem_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


MAX_REVOCATIONS = 10  # a fresh 1M-play load that lapsed heartbeats looped every ~13 s: never converged


def revocations(log: Path, offset: int, pid: int) -> int:
    """How often ``pid`` lost its partitions since ``offset`` (the empty revocation of the first
    join not counted): a worker whose heartbeats lapse keeps rejoining and never holds the view."""
    with open(log, "rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    return sum(1 for line in text.splitlines()
               if f"] [{pid}] " in line and "Revoking previously assigned partitions" in line
               and "partitions set()" not in line)


def _full(st: dict, target: int, plays: int) -> bool:
    """Whether the worker holds every fact: with the royalty stages (``views`` in its status), the
    joins hold every play and the shards every decided play; else the one view every fact."""
    views = st.get("views")
    if views is None:
        return st.get("royalty_facts", 0) >= target
    joins = sum(v["facts"] for n, v in views.items() if n.startswith("join-"))
    shards = sum(v["facts"] for n, v in views.items() if n.startswith("shard-"))
    return joins >= plays and shards >= plays


def wait_ready(settings: Settings, w, target: int, timeout: float, *, no_lag: bool,  # noqa: ANN001
               rss_limit: int = 0, log_offset: int = 0, plays: int = 0) -> dict:
    """Poll ``/status`` until owner with ``royalty_facts >= target`` (and, ``no_lag``, the worker
    group with no lag, twice in a row); seconds from the worker's start. Gives up when the worker's
    RSS passes ``rss_limit`` (the machine is shared: better no figure than the OOM killer) or when
    it lost its partitions more than :data:`MAX_REVOCATIONS` times (it is not converging)."""
    from devstack.workers import source_lag

    deadline = time.monotonic() + timeout
    first_owner = None
    full_at = None
    streak = 0
    st: dict | None = None
    lag: dict[str, int] = {}
    while time.monotonic() < deadline:
        if not w.alive():
            raise PlaylogError(f"worker {w.name} died (exit code {w.returncode}); see {w.log}")
        st = w.status()
        now = time.monotonic()
        rss = _proc_status(w.pid).get("VmRSS", 0)
        if rss_limit and rss > rss_limit:
            raise PlaylogError(f"worker {w.name} RSS {rss / 1e9:.1f} GB passed the limit {rss_limit / 1e9:.1f} GB "
                               f"(status {st})")
        if not (st and st.get("owner")) and (lost := revocations(w.log, log_offset, w.pid)) > MAX_REVOCATIONS:
            raise PlaylogError(f"worker {w.name} lost its partitions {lost} times in {now - w.started_at:.0f}s "
                               f"without holding the view (heartbeats lapse, the group rebalances); see {w.log}")
        if st and st.get("owner"):
            first_owner = first_owner if first_owner is not None else now
            if _full(st, target, plays):
                full_at = full_at if full_at is not None else now
                if not no_lag:
                    break
                lag = source_lag(settings)
                streak = streak + 1 if not any(lag.values()) else 0
                if streak >= 2:
                    break
        time.sleep(POLL)
    else:
        raise PlaylogError(f"worker {w.name} not ready within {timeout:.0f}s (status {st}, lag {lag}); see {w.log}")
    ready_at = time.monotonic()
    mem = _proc_status(w.pid)
    return {
        "owner_s": first_owner - w.started_at, "full_s": full_at - w.started_at, "ready_s": ready_at - w.started_at,
        "facts": st.get("royalty_facts", 0), "rss": mem.get("VmRSS", 0),
    }


_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] \[(\d+)\] \[\w+\] (.*)$")
_MARKS = {
    "assigned": "Highwater for active changelog partitions",
    "restoring": "Restoring state from changelog topics",
    "restored": "Done reading from changelog topics",
    "complete": "Restore complete!",
    "rebuilt": "royalty view rebuilt from",  # table design: the view rebuilt from the recovered table
    "loaded": " loaded in ",  # checkpoint design (worker/checkpoint.py): "royalty view [name ]loaded in"
    "written": "written: ",  # checkpoint design: "checkpoint A written: ..."
    "ready": "Worker ready",
}
_LOADED = re.compile(r"royalty view (?:\S+ )?loaded in ([\d.]+)s: (?:checkpoint \w+ \((\d+) facts, before offset (\d+)\)"
                     r"|no checkpoint) in ([\d.]+)s, then (\d+) (?:royalty.inputs|input) record\(s\) to offset (\d+)"
                     r" in ([\d.]+)s")
_WRITTEN = re.compile(r"checkpoint (\w+) written: (\d+) facts, royalty.inputs before offset (\d+), (\d+) bytes in "
                      r"(\d+) chunk\(s\), (?:encoded in ([\d.]+)s, )?([\d.]+)s")


def log_events(log: Path, offset: int, pid: int) -> list[tuple[str, float, str]]:
    """(mark, wall time, message) of the lines ``pid`` wrote to the worker log since ``offset``."""
    with open(log, "rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    events: list[tuple[str, float, str]] = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m or int(m.group(2)) != pid:
            continue
        for name, needle in _MARKS.items():
            if needle in m.group(3):
                at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local time, as logged
                events.append((name, at, m.group(3)))
    return events


def log_phases(log: Path, offset: int, pid: int, started_wall: float) -> dict:
    """Split a start into phases from the worker log written since ``offset`` by ``pid``.

    - ``startup_s``: process start to partitions assigned (imports, group join: after a SIGKILL the
      old member holds its partitions until its session times out);
    - ``changelog_restore_s``: Faust reading the tables' changelogs into RocksDB;
    - table design: ``rebuild_s``, the royalty table's on_recover callback (every stored fact
      parsed and folded into the view);
    - checkpoint design: ``view_load_s`` (from the assignment's recovery to the view loaded:
      newest checkpoint read and decoded, then the tail of royalty.inputs folded), split into
      ``checkpoint_load_s`` and ``tail_s`` as the worker logs them.

    The last recovery before the view was held counts; ``recoveries`` says how many there were."""
    events = log_events(log, offset, pid)
    held = [i for i, e in enumerate(events) if e[0] in ("rebuilt", "loaded")]
    if not held:
        return {"recoveries": sum(1 for e in events if e[0] == "assigned")}
    last = held[-1]

    def before(name: str) -> float | None:
        for e in reversed(events[:last + 1]):
            if e[0] == name:
                return e[1]
        return None

    t_assigned, t_restoring, t_restored = before("assigned"), before("restoring"), before("restored")
    if t_restoring is not None and (t_assigned is None or t_restoring < t_assigned):
        t_restoring = t_restored = None  # that restore belonged to an earlier recovery
    kind, t_held, msg = events[last]
    out: dict = {"recoveries": sum(1 for e in events[:last + 1] if e[0] == "assigned"),
                 "startup_s": (t_assigned or t_held) - started_wall,
                 "changelog_restore_s": (t_restored - t_restoring) if t_restoring and t_restored else 0.0}
    if kind == "rebuilt":
        n = re.search(r"from (\d+) stored facts", msg)
        out["stored_facts"] = int(n.group(1)) if n else 0
        out["rebuild_s"] = t_held - (before("complete") or t_held)
    else:
        # every view loaded since the last assignment (one, or one per royalty stage partition)
        loads = [(e[1], m) for e in events[:last + 1] if e[0] == "loaded" and (t_assigned is None or e[1] >= t_assigned)
                 and (m := _LOADED.search(e[2]))]
        if loads:
            first_start = min(t - float(m.group(1)) for t, m in loads)
            out.update({"views_loaded": len(loads), "view_load_s": t_held - first_start,
                        "checkpoint_facts": sum(int(m.group(2) or 0) for _, m in loads),
                        "checkpoint_through": sum(int(m.group(3) or 0) for _, m in loads),
                        "checkpoint_load_s": sum(float(m.group(4)) for _, m in loads),
                        "tail_records": sum(int(m.group(5)) for _, m in loads),
                        "tail_s": sum(float(m.group(7)) for _, m in loads),
                        "assigned_to_view_load_start_s": first_start - (t_assigned or first_start)})
    ready = [e[1] for e in events if e[0] == "ready" and e[1] <= t_held]
    if ready:
        out["worker_ready_at_s"] = ready[-1] - started_wall
    return out


def wait_checkpoint(w, offset: int, through: int, timeout: float) -> dict:  # noqa: ANN001
    """Checkpoint design: until the worker logs a checkpoint covering ``royalty.inputs`` up to
    ``through`` (the quiet steady state a lost worker is recovered from); its figures."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for kind, _, msg in reversed(log_events(w.log, offset, w.pid)):
            m = _WRITTEN.search(msg) if kind == "written" else None
            if m and int(m.group(3)) >= through:
                return {"facts": int(m.group(2)), "through": int(m.group(3)), "bytes": int(m.group(4)),
                        "chunks": int(m.group(5)), "encode_s": float(m.group(6)) if m.group(6) else None,
                        "write_s": float(m.group(7))}
        if not w.alive():
            raise PlaylogError(f"worker {w.name} died (exit code {w.returncode}); see {w.log}")
        time.sleep(POLL)
    raise PlaylogError(f"no checkpoint through offset {through} within {timeout:.0f}s; see {w.log}")


def wait_view_checkpoints(settings: Settings, w, timeout: float) -> dict:  # noqa: ANN001
    """Royalty stages: until every join and shard view with records has a checkpoint covering its
    partition's end offset (from the worker's ``/status``); their chunks and facts summed."""
    from worker import checkpoint
    from worker.royalty import JOIN_TOPIC, SHARD_TOPIC

    ends = {f"{stage}-{p}": e for stage, topic in (("join", JOIN_TOPIC), ("shard", SHARD_TOPIC))
            for p in range(topic_spec(topic).partitions) if (e := checkpoint.end_offset(settings, topic, p))}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        views = (w.status() or {}).get("views", {})
        got = {n: v["checkpoint"] for n, v in views.items() if v.get("checkpoint")}
        if all(n in got and got[n]["through"] >= e for n, e in ends.items()):
            return {"views": len(got), "chunks": sum(c["chunks"] for c in got.values()),
                    "facts": sum(c["facts"] for c in got.values())}
        if not w.alive():
            raise PlaylogError(f"worker {w.name} died (exit code {w.returncode}); see {w.log}")
        time.sleep(POLL)
    raise PlaylogError(f"no checkpoints covering {ends} within {timeout:.0f}s; see {w.log}")


def worker_code() -> str:
    """md5 (first 8 hex digits) of worker/app.py and worker/checkpoint.py as a worker starting now
    imports them: the worker's recovery is being changed while this bench exists."""
    root = Path(__file__).resolve().parent.parent / "worker"
    return " ".join(f"{name}:{hashlib.md5((root / name).read_bytes()).hexdigest()[:8]}"  # noqa: S324
                    for name in ("app.py", "checkpoint.py") if (root / name).exists())


def start_timed(w) -> tuple[int, float]:  # noqa: ANN001
    """Start the worker; returns (log offset before the start, wall time of the start)."""
    offset = w.log.stat().st_size if w.log.exists() else 0
    wall = time.time()
    w.start()
    return offset, wall


def topic_records(settings: Settings) -> dict[str, int]:
    """Records (end - start offsets) of every topic of the prefix."""
    from confluent_kafka import Consumer

    from topics.admin import admin_client
    from topics.kafka_io import consumer_config, end_offsets

    names = [t for t in admin_client(settings).list_topics(timeout=10).topics if t.startswith(settings.topic_prefix)]
    c = Consumer(consumer_config(settings, None))
    try:
        out: dict[str, int] = {}
        for (t, _), (lo, hi) in end_offsets(c, names).items():
            out[t] = out.get(t, 0) + hi - lo
        return out
    finally:
        c.close()


def raw_consume(settings: Settings, topic: str, start: int = 0) -> dict:
    """Every record of ``topic`` (all partitions; partition 0 from ``start``) up to the end offsets
    seen now, with a bare confluent-kafka consumer (no decode): seconds, records, bytes."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from topics.kafka_io import consumer_config, end_offsets

    c = Consumer(consumer_config(settings, None))
    try:
        ends = end_offsets(c, [topic])
        first = {p: max(lo, start if p == 0 else 0) for (_, p), (lo, hi) in ends.items()}
        want = {p: hi for (_, p), (lo, hi) in ends.items() if hi > first[p]}
        t0 = time.perf_counter()
        if not want:
            return {"seconds": 0.0, "records": 0, "bytes": 0}
        c.assign([TopicPartition(topic, p, first[p] or OFFSET_BEGINNING) for p in want])
        n = nbytes = 0
        remaining = set(want)
        deadline = time.monotonic() + 600
        while remaining and time.monotonic() < deadline:
            # a short timeout: consume() waits it out whenever fewer than num_messages are left
            for msg in c.consume(num_messages=10000, timeout=0.05):
                if msg.error() is not None:
                    continue
                n += 1
                v = msg.value()
                nbytes += len(v) if v else 0
                if msg.offset() >= want[msg.partition()] - 1:
                    remaining.discard(msg.partition())
        seconds = time.perf_counter() - t0
        if remaining:
            raise PlaylogError(f"baseline did not reach the end of {topic} within 600 s")
        return {"seconds": seconds, "records": n, "bytes": nbytes}
    finally:
        c.close()


# -- one N ----------------------------------------------------------------------------------------------
def run_one(n: int, tracks: int = 1000, keep_logs: Path | None = None) -> dict:
    from benchmarks.cli import _env_for, bench_broker
    from devstack.workers import WorkerProcess
    from topics.admin import create_topics

    saved = dict(os.environ)
    out: dict = {"plays": n}
    try:
        with bench_broker() as (settings, _ready):
            _env_for(settings)
            create_topics(settings)
            prefix = settings.topic_prefix
            prod = produce_inputs(settings, n, tracks)
            target = n + prod["head_events"]
            out.update({"facts (plays + catalog/rights/pools)": target, "input_records (500 facts each)":
                        prod["input_records"], "input_MB": prod["input_bytes"] / 1e6,
                        "generate_and_produce_s": prod["generate_and_produce_s"]})
            timeout = 300 + n / 2000
            rss_limit = int(_mem_available() * 0.6)  # a shared machine: leave the others room
            out["mem_available_MB at start"] = _mem_available() / 1e6
            w = WorkerProcess(settings, settings.data_dir / "logs", name="w1", extra_args=("--plays-stage", "none", "--taste-stage", "none"))
            mode = "?"
            try:
                # 1. build from empty state
                out["worker_code build"] = worker_code()
                build_log, _ = start_timed(w)
                b = wait_ready(settings, w, target, timeout, no_lag=True, rss_limit=rss_limit, log_offset=build_log,
                               plays=n)
                out["build_s (start to owner, all facts, lag 0)"] = b["ready_s"]
                out["build_facts_per_s"] = target / b["ready_s"]
                out["worker_rss_MB after build"] = b["rss"] / 1e6
                out["worker_peak_rss_MB build"] = _proc_status(w.pid).get("VmHWM", 0) / 1e6
                counts = topic_records(settings)
                changelog = prefix + "worker-royalty_facts-changelog"
                if counts.get(changelog, 0) > 0:
                    mode = "table changelog (royalty_facts)"
                elif prefix + "royalty.plays" in counts:
                    mode = "checkpoint per royalty stage partition (royalty.checkpoints)"
                    # a view's next checkpoint waits 10x its last encode (worker/royalty.py): a big view waits long
                    ck = wait_view_checkpoints(settings, w, timeout=3 * settings.checkpoint_seconds + 600 + n / 2000)
                    out.update({"checkpoint_views": ck["views"], "checkpoint_chunks": ck["chunks"],
                                "checkpoint_facts (as logged)": ck["facts"]})
                elif prefix + "royalty.checkpoints" in counts:
                    mode = "checkpoint (royalty.checkpoints)"
                    ck = wait_checkpoint(w, build_log, counts[prefix + "royalty.inputs"],
                                         timeout=3 * settings.checkpoint_seconds + 300)
                    out.update({"checkpoint_MB": ck["bytes"] / 1e6, "checkpoint_chunks": ck["chunks"],
                                "checkpoint_write_s": ck["write_s"], "checkpoint_encode_s": ck["encode_s"],
                                "checkpoint_through": ck["through"],
                                "checkpoint_facts (as logged)": ck["facts"]})
                else:
                    raise PlaylogError(f"neither a royalty_facts changelog nor a checkpoint topic: {sorted(counts)}")
                out["recovery_mode"] = mode
                time.sleep(2)  # let the last commits and changelog writes settle
                out["rocksdb_state_MB"] = _du(w.state_dir) / 1e6
                # 2. restart with the local state kept; 3. fresh worker: local state lost. Each is
                # measured even when the other did not converge (its error is reported instead).
                def restart(phase: str, label: str, wipe: bool) -> None:
                    if w.alive():
                        w.kill()
                    if wipe:
                        shutil.rmtree(w.state_dir, ignore_errors=True)
                    out[f"worker_code {phase}"] = worker_code()
                    offset, wall = start_timed(w)
                    try:
                        r = wait_ready(settings, w, target, timeout, no_lag=False, rss_limit=rss_limit,
                                       log_offset=offset, plays=n)
                        out[label] = r["full_s"]
                    except PlaylogError as exc:
                        out[f"{phase}.error"] = str(exc)
                    for key, v in log_phases(w.log, offset, w.pid, wall).items():
                        out[f"{phase}.{key}"] = v
                    out[f"worker_peak_rss_MB {phase}"] = _proc_status(w.pid).get("VmHWM", 0) / 1e6

                restart("restart_kept", "restart_kept_s (start to owner, all facts)", wipe=False)
                restart("fresh", "fresh_recovery_s (start to owner, all facts)", wipe=True)
                out["rocksdb_state_MB after fresh recovery"] = _du(w.state_dir) / 1e6
            finally:
                w.stop()
                if keep_logs is not None and w.log.exists():  # the broker's data dir goes with it
                    keep_logs.mkdir(parents=True, exist_ok=True)
                    shutil.copy(w.log, keep_logs / f"recovery-{n}-worker-w1.log")
            # 4. baselines, same broker, same run: raw consumption of what the recovery reads
            counts = topic_records(settings)
            out["changelog_records, all tables"] = sum(v for t, v in counts.items() if t.endswith("-changelog"))
            fresh = out.get("fresh_recovery_s (start to owner, all facts)")
            if mode.startswith("table"):
                base = raw_consume(settings, changelog)
                out["baseline: royalty_facts changelog records"] = base["records"]
            elif "per royalty stage" in mode:  # the checkpoints cover every input: no tail to read
                base = raw_consume(settings, prefix + "royalty.checkpoints")
                out["baseline: checkpoint topic records"] = base["records"]
            else:
                base = raw_consume(settings, prefix + "royalty.checkpoints")
                tail = raw_consume(settings, prefix + "royalty.inputs", start=out.get("fresh.checkpoint_through",
                                                                                  out["checkpoint_through"]))
                out["baseline: checkpoint topic records"] = base["records"]
                out["baseline: royalty.inputs tail records"] = tail["records"]
                base = {k: base[k] + tail[k] for k in ("seconds", "records", "bytes")}
            out["baseline_MB"] = base["bytes"] / 1e6
            out["baseline_raw_consume_s"] = base["seconds"]
            out["ratio fresh_recovery / baseline"] = fresh / base["seconds"] if fresh and base["seconds"] else None
            if out.get("fresh.changelog_restore_s") and mode.startswith("table"):
                out["ratio changelog_restore / baseline"] = out["fresh.changelog_restore_s"] / base["seconds"]
                out["fresh.changelog_restore_records_per_s"] = base["records"] / out["fresh.changelog_restore_s"]
            inputs = raw_consume(settings, prefix + "royalty.inputs")  # what a rebuild with no state reads
            out["raw_consume royalty.inputs (all) s"] = inputs["seconds"]
            logs = settings.data_dir / "kafka" / "logs"
            out["broker_disk_MB"] = _du(logs) / 1e6
            for t, size in sorted(_topic_sizes(logs, prefix).items(), key=lambda x: -x[1])[:4]:
                out[f"broker_disk_MB {t}"] = size / 1e6
    except PlaylogError as exc:  # one N failing (too slow, too big) keeps the figures it had, and the other Ns
        out["error"] = str(exc)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return out


def _source_version() -> dict:
    root = Path(__file__).resolve().parent.parent
    app = root / "worker" / "app.py"
    out = {"worker_app_md5": hashlib.md5(app.read_bytes()).hexdigest()}  # noqa: S324 (identification only)
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "worker"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
        out["commit"] = head + (" (worker/ modified)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def run_recovery(plays: list[int], tracks: int = 1000, keep_logs: Path | None = None) -> tuple[dict, str]:
    """Every N in turn; returns (flat results for ``record``, a table per N)."""
    flat: dict = {**_source_version(), "load_avg_at_start": os.getloadavg()[0]}
    per_n = []
    for n in plays:
        r = run_one(n, tracks, keep_logs)
        per_n.append(r)
        flat.update({f"{n}.{k}": v for k, v in r.items() if k != "plays"})
    flat["load_avg_at_end"] = os.getloadavg()[0]
    return flat, table(per_n)


def table(rows: list[dict]) -> str:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.0f}"
        if isinstance(v, int):
            return f"{v:,}"
        return "" if v is None else str(v)

    width = max(len(k) for k in keys)
    cols = [[fmt(r.get(k)) for k in keys] for r in rows]
    cw = [max(len(c) for c in col) for col in cols]
    lines = []
    for i, k in enumerate(keys):
        lines.append(f"  {k:<{width}}  " + "  ".join(f"{col[i]:>{w}}" for col, w in zip(cols, cw, strict=True)))
    return "\n".join(lines)
