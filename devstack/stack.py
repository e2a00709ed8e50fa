"""The whole stack as local processes: what ``playlog up`` runs and ``playlog demo`` is built on.

Order: the broker (a local KRaft node, or a cluster of ``brokers`` nodes, bound where
``PLAYLOG_BOOTSTRAP_SERVERS`` and ``PLAYLOG_KAFKA_CONTROLLER_PORT`` say, unless a cluster already
answers there or the caller says there is none to start), the topic catalog (replicated as the
cluster says: 3 times with ``min.insync.replicas=2`` on a cluster of 3), N workers (each its own
name, web port and state dir), the CDN, the API, optional sinks. Each part is a child of one :class:`Supervisor`; the
endpoints are recorded in ``$PLAYLOG_DATA_DIR/up/stack.json`` so the verbs that talk to the stack
(``playlog royalties``, ``replay --diff-live``) find the workers without ``PLAYLOG_WORKER_URLS``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import PlaylogError
from core.settings import Settings
from devstack.batch import BatchSchedule, recs_argv
from devstack.supervisor import Child, Supervisor, free_port, playlog_argv, port_open
from devstack.workers import WorkerProcess

if TYPE_CHECKING:
    from devstack.kafka import LocalKafka, LocalKafkaCluster

log = logging.getLogger(__name__)

SINKS = ("duckdb", "parquet", "clickhouse")
FIRST_WORKER_PORT = 6066
LIVENESS_EVERY = 10.0  # seconds between liveness checks of the workers
START_GRACE = 120.0  # a worker that just started may not answer yet
SILENT_CHECKS = 3  # unanswered checks in a row (a frozen process) count as a stall


def stack_file(data_dir: Path) -> Path:
    return Path(data_dir) / "up" / "stack.json"


def recorded_worker_urls(data_dir: Path) -> list[str]:
    """Worker endpoints recorded by a running (or last) ``playlog up`` under ``data_dir``."""
    try:
        doc = json.loads(stack_file(data_dir).read_text())
    except (OSError, ValueError):
        return []
    return [str(u) for u in doc.get("workers", [])]


def cluster_answers(bootstrap: str, timeout: float = 3.0) -> bool:
    """Whether a Kafka cluster serves metadata at ``bootstrap``."""
    from confluent_kafka.admin import AdminClient

    first = bootstrap.split(",")[0]
    host, _, port = first.rpartition(":")
    if not port.isdigit() or not port_open(host or "127.0.0.1", int(port)):
        return False
    try:
        md = AdminClient({"bootstrap.servers": bootstrap, "logger": log}).list_topics(timeout=timeout)
    except Exception:  # noqa: BLE001 - anything but metadata means "no cluster here"
        return False
    return bool(md.brokers)


@dataclass(frozen=True)
class StackOptions:
    workers: int = 1
    brokers: int = 1  # nodes of the local cluster, when one is started (3: replication 3, min.insync 2)
    broker: str = "auto"  # auto: start one unless a cluster answers; local: always; none: never
    sinks: tuple[str, ...] = ()
    cdn: bool = True
    api: bool = True
    registry: bool = True  # the schema registry (playlog registry), unless PLAYLOG_SCHEMA_REGISTRY_URL names one
    api_timeout: float = 180.0


class Stack:
    """The stack's processes under one supervisor; ``stop()`` ends them all, whatever failed."""

    def __init__(self, settings: Settings, opts: StackOptions | None = None,
                 say: Callable[[str], None] = log.info) -> None:
        self.settings = settings
        self.opts = opts or StackOptions()
        self.say = say
        self.supervisor = Supervisor()
        self.broker: LocalKafka | LocalKafkaCluster | None = None
        self.replication = 1  # of the cluster's topics (the workers' changelogs are in the catalog too)
        self.workers: list[WorkerProcess] = []
        self.cdn: Child | None = None
        self.api: Child | None = None
        self.registry: Child | None = None
        self.sinks: list[Child] = []
        self.batch_recs: BatchSchedule | None = None
        self.log_dir = Path(settings.data_dir) / "logs"
        self.timings: dict[str, float] = {}
        self._last_check = time.monotonic()
        self._silent: dict[str, int] = {}

    # -- parts -----------------------------------------------------------------------------------
    def start_broker(self) -> None:
        from devstack.kafka import LocalKafkaCluster, from_settings
        from topics.admin import create_topics, replication_for

        s = self.settings
        mode = self.opts.broker
        if mode not in ("auto", "local", "none"):
            raise PlaylogError(f"unknown broker mode {mode!r}")
        if self.opts.brokers < 1:
            raise PlaylogError(f"a local cluster needs at least one broker, not {self.opts.brokers}")
        if mode == "none" or (mode == "auto" and cluster_answers(s.bootstrap_servers)):
            if not cluster_answers(s.bootstrap_servers, timeout=10.0):
                raise PlaylogError(f"no Kafka cluster answers at {s.bootstrap_servers} (PLAYLOG_BOOTSTRAP_SERVERS); "
                                   "drop --no-broker to start a local one")
            self.say(f"broker: using the cluster at {s.bootstrap_servers}")
        else:
            broker = from_settings(s, self.opts.brokers)
            if isinstance(broker, LocalKafkaCluster):
                ctl = ",".join(str(n.controller_port) for n in broker.nodes.values())
                self.say(f"broker: starting a Kafka cluster of {len(broker.nodes)} nodes on {broker.bootstrap} "
                         f"(controllers {ctl}, replication {broker.replication}, data {broker.data_dir}) ...")
            else:
                self.say(f"broker: starting Kafka on {broker.bootstrap} (controller {broker.controller_port}, "
                         f"data {broker.data_dir}) ...")
            self.broker = broker
            broker.name = "broker"
            self.supervisor.add(broker)
            self.timings["broker_ready_s"] = broker.start(timeout=120)
            if isinstance(broker, LocalKafkaCluster):  # every child gets every node, not only the first
                self.settings = s = replace(s, bootstrap_servers=broker.bootstrap)
            self.say(f"broker: ready on {broker.bootstrap} in {self.timings['broker_ready_s']:.1f}s")
        created = create_topics(s)
        self.replication = replication_for(s)
        self.say(f"topics: {len(created)} created (prefix {s.topic_prefix!r}, replication {self.replication})")

    def _worker_ports(self, n: int) -> list[int]:
        wanted = [int(u.rsplit(":", 1)[1]) for u in self.settings.worker_urls if u.rsplit(":", 1)[-1].isdigit()]
        ports: list[int] = []
        for i in range(n):
            port = wanted[i] if i < len(wanted) else FIRST_WORKER_PORT + i
            if port in ports or port_open("127.0.0.1", port):
                port = free_port()
            ports.append(port)
        return ports

    def start_workers(self) -> None:
        n = self.opts.workers
        if n < 1:
            return
        for i, port in enumerate(self._worker_ports(n), start=1):
            w = WorkerProcess(self.settings, self.log_dir, name=f"w{i}", port=port).start()
            self.supervisor.add(w)
            self.workers.append(w)
        for w in self.workers:
            w.wait_healthy(120)
            self.say(f"worker {w.name}: ready, web {w.url} (state {w.state_dir}, log {w.log})")

    def registry_url(self) -> str | None:
        """Where this stack's producers and consumers find the schemas (None: the shipped ids only)."""
        if self.settings.schema_registry_url:
            from topics.schema_registry import redact

            return redact(self.settings.schema_registry_url)
        return f"http://127.0.0.1:{self.settings.registry_port}" if self.registry else None

    def start_registry(self) -> None:
        s = self.settings
        if s.schema_registry_url:
            self.say(f"registry: using the schema registry at {self.registry_url()} (PLAYLOG_SCHEMA_REGISTRY_URL)")
            return
        self._check_port("schema registry", "127.0.0.1", s.registry_port, "PLAYLOG_REGISTRY_PORT")
        url = f"http://127.0.0.1:{s.registry_port}"
        self.registry = self.supervisor.add(Child("registry", playlog_argv("registry"), s.to_env(),
                                                  self.log_dir / "registry.log", health_url=f"{url}/healthz").start())
        self.registry.wait_healthy(60)
        self.say(f"registry: ready on {url} (Confluent Schema Registry API; AsyncAPI at {url}/asyncapi.json)")

    def start_cdn(self) -> None:
        s = self.settings
        self._check_port("CDN", s.cdn_host, s.cdn_port, "PLAYLOG_CDN_PORT")
        self.cdn = self.supervisor.add(Child("cdn", playlog_argv("cdn"), s.to_env(), self.log_dir / "cdn.log",
                                             health_url=f"http://127.0.0.1:{s.cdn_port}/healthz").start())
        self.cdn.wait_healthy(60)
        self.say(f"cdn: ready on {s.cdn_base_url}")

    def start_api(self) -> None:
        s = self.settings
        self._check_port("API", s.api_host, s.api_port, "PLAYLOG_API_PORT")
        self.api = self.supervisor.add(Child("api", playlog_argv("api"), s.to_env(), self.log_dir / "api.log",
                                             health_url=f"http://127.0.0.1:{s.api_port}/healthz").start())
        secs = self.api.wait_healthy(self.opts.api_timeout)
        self.say(f"api: ready on http://{s.api_host}:{s.api_port} (views caught up in {secs:.1f}s; "
                 f"OpenAPI at /openapi.json)")

    def start_sinks(self) -> None:
        for kind in self.opts.sinks:
            if kind not in SINKS:
                raise PlaylogError(f"unknown sink {kind!r} (choose from {', '.join(SINKS)})")
            args = ["sink", kind, "--follow"]
            if kind == "clickhouse" and not self._clickhouse_answers():
                args.append("--local")
            child = self.supervisor.add(Child(f"sink-{kind}", playlog_argv(*args), self.settings.to_env(),
                                              self.log_dir / f"sink-{kind}.log").start())
            self.sinks.append(child)
            self.say(f"sink {kind}: following the topics (log {child.log})")

    def _clickhouse_answers(self) -> bool:
        from urllib.parse import urlparse

        u = urlparse(self.settings.clickhouse_url)
        return port_open(u.hostname or "127.0.0.1", u.port or 9000)

    def _check_port(self, what: str, host: str, port: int, var: str) -> None:
        if port_open("127.0.0.1" if host in ("0.0.0.0", "") else host, port):
            raise PlaylogError(f"the {what} port {port} is already in use (set {var})")

    # -- the whole thing -------------------------------------------------------------------------
    def start(self) -> Stack:
        Path(self.settings.data_dir).mkdir(parents=True, exist_ok=True)
        self.start_broker()
        if self.opts.registry:
            self.start_registry()
        self.start_workers()
        self.record()
        if self.opts.cdn:
            self.start_cdn()
        if self.opts.api:
            self.start_api()
        self.start_sinks()
        self.schedule_batches()
        self.record()
        return self

    def schedule_batches(self) -> None:
        """``playlog batch recs`` every PLAYLOG_BATCH_RECS_EVERY seconds (devstack/batch.py), run by :meth:`watch`."""
        every = self.settings.batch_recs_every
        if every <= 0:
            self.say("batch recs: off (PLAYLOG_BATCH_RECS_EVERY=0)")
            return
        self.batch_recs = BatchSchedule("batch recs", recs_argv(self.opts.sinks, self.settings.data_dir),
                                        self.settings.to_env(), self.log_dir / "batch-recs.log", every, say=self.say)
        self.supervisor.add(self.batch_recs)  # stopped with the rest (a run in progress is ended)
        self.say(f"batch recs: every {every}s, first in {every}s (view.similar, view.popularity; "
                 f"log {self.batch_recs.log_path})")

    def endpoints(self) -> dict:
        s = self.settings
        return {
            "pid": os.getpid(),
            "started_at": time.time(),
            "bootstrap_servers": s.bootstrap_servers,
            "topic_prefix": s.topic_prefix,
            "workers": [w.url for w in self.workers],
            "cdn": s.cdn_base_url if self.cdn else None,
            "api": f"http://127.0.0.1:{s.api_port}" if self.api else None,
            "schema_registry": self.registry_url(),
            "sinks": [c.name for c in self.sinks],
        }

    def record(self) -> Path:
        path = stack_file(self.settings.data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.endpoints(), indent=2) + "\n")
        tmp.replace(path)
        return path

    def watch(self) -> None:
        """Until a child dies (ChildDied naming it) or Ctrl-C / SIGTERM (KeyboardInterrupt);
        meanwhile a worker that is stalled (``/livez`` 503) or frozen is restarted, and said so."""
        self.supervisor.watch(on_tick=self.tick)

    def tick(self) -> None:
        self.check_workers()
        if self.batch_recs is not None:
            self.batch_recs.tick()

    def check_workers(self) -> None:
        now = time.monotonic()
        if now - self._last_check < LIVENESS_EVERY:
            return
        self._last_check = now
        for w in self.workers:
            if not w.alive():
                continue  # the supervisor reports a dead child
            verdict, detail = w.liveness()
            if verdict == "live" or (verdict == "silent" and now - w.started_at < START_GRACE):
                self._silent[w.name] = 0
                continue
            if verdict == "silent":
                self._silent[w.name] = self._silent.get(w.name, 0) + 1
                if self._silent[w.name] < SILENT_CHECKS:
                    continue
            self._silent[w.name] = 0
            w.restarts += 1
            self.say(f"worker {w.name}: {'stalled' if verdict == 'stalled' else 'not answering'} "
                     f"({detail.strip()[:200]}); restarting it (restart {w.restarts})")
            w.kill()  # a stalled worker is not trusted with a graceful shutdown (nor its commits)
            w.start()

    def pids(self) -> list[int]:
        out = self.supervisor.pids()
        if self.broker is not None:  # a cluster's nodes are one part of the supervisor
            out += [p for p in self.broker.pids() if p not in out]
        return out

    def stop(self) -> None:
        self.supervisor.stop()
        try:
            doc = json.loads(stack_file(self.settings.data_dir).read_text())
            if doc.get("pid") == os.getpid():
                stack_file(self.settings.data_dir).unlink()
        except (OSError, ValueError):
            pass


def with_ports(settings: Settings, **changes: int | str) -> Settings:
    """``settings`` with other ports (the demo moves to free ports where the defaults are busy)."""
    out = replace(settings, **changes)  # type: ignore[arg-type]
    if "cdn_port" in changes and "cdn_base_url" not in changes:
        out = replace(out, cdn_base_url=f"http://127.0.0.1:{out.cdn_port}")
    return out
