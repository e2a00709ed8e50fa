"""A real local Apache Kafka (KRaft) for development and tests: one node, or a cluster of several.

- :class:`LocalKafka`: one KRaft node (broker + controller in one JVM) on loopback.
- :class:`LocalKafkaCluster`: N such nodes sharing one cluster id, every node a voter of the
  controller quorum, on distinct loopback ports. With 3 nodes, topics (and Kafka's internal offsets
  and transaction-state topics) are replicated 3 times with ``min.insync.replicas=2``, so the loss
  of any one broker loses no acknowledged record and blocks no writer. ``kill(node)`` SIGKILLs a
  node's JVM, ``restart(node)`` starts it again on the same data dir (bounce tests).

The jars come from Maven Central through ``devstack/kafka/pom.xml`` (``ensure_jars``) and run on the
machine's Java. Log dirs live under ``PLAYLOG_DATA_DIR/kafka`` (a cluster: ``kafka/node-<id>``) so
data survives a restart.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from core.errors import PlaylogError
from core.settings import KAFKA_VERSION, Settings, load
from devstack.supervisor import free_port, port_open, sigterm_as_interrupt, stop_process  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

log = logging.getLogger(__name__)


POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"
MAX_REPLICATION = 3  # a cluster of more nodes still keeps 3 copies of each partition
PORT_STRIDE = 2  # node i of a cluster derived from one address: bootstrap port + 2(i-1), controller port + 2(i-1)


def jars_dir() -> Path:
    """Where the broker's jars are kept (``PLAYLOG_KAFKA_JARS`` or a per-user cache)."""
    return load().kafka_jars


def ensure_jars(target: Path | None = None) -> Path:
    """Copy Kafka and its runtime dependencies into ``target`` with Maven (once)."""
    target = target or jars_dir()
    marker = target / f"kafka_2.13-{KAFKA_VERSION}.jar"
    if marker.exists():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise PlaylogError("Maven ('mvn') is needed once to fetch the Kafka jars; install it (apt-get install maven)")
    target.mkdir(parents=True, exist_ok=True)
    log.info("fetching Kafka %s jars from Maven Central into %s", KAFKA_VERSION, target)
    proc = subprocess.run(
        [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
         f"-DoutputDirectory={target}", "-DincludeScope=runtime"],
        capture_output=True, text=True,
    )
    if proc.returncode != 0 or not marker.exists():
        raise PlaylogError(f"Maven could not fetch the Kafka jars: {(proc.stdout + proc.stderr).strip()[-400:]}")
    return target


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, base64url without padding (22 characters), never starting
    with ``-`` (it would read as an option on the storage tool's command line; Kafka's own
    ``Uuid.randomUuid`` avoids it the same way)."""
    import base64

    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class LocalKafka:
    """One KRaft node (broker + controller) on loopback, its data under ``data_dir``.

    Alone (the defaults) it is a one-node cluster. As a member of a :class:`LocalKafkaCluster` it is
    given its ``node_id``, the quorum's ``voters`` (``id@host:port,...``), the shared ``cluster_id``
    and the cluster's ``replication`` (which sets the internal topics' replication and the
    brokers' ``default.replication.factor`` / ``min.insync.replicas``).
    """

    def __init__(self, data_dir: Path, port: int = 9092, controller_port: int = 9093, heap: str = "768m", *,
                 node_id: int = 1, voters: str | None = None, cluster_id: str | None = None,
                 replication: int = 1, overrides: dict[str, str] | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        self.node_id = node_id
        self.voters = voters or f"{node_id}@127.0.0.1:{controller_port}"
        self.cluster_id = cluster_id
        self.replication = replication
        self.overrides = dict(overrides or {})
        self.proc: subprocess.Popen | None = None
        self.name = "broker" if voters is None else f"broker-{node_id}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def props_path(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pids(self) -> list[int]:
        return [] if self.proc is None else [self.proc.pid]

    def config(self) -> dict[str, str]:
        """The node's server.properties."""
        from topics.admin import min_insync_for

        min_isr = str(min_insync_for(self.replication))
        cfg = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.log_dir),
            "num.partitions": "4",
            "default.replication.factor": str(self.replication),
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": str(self.replication),
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": str(self.replication),
            "transaction.state.log.min.isr": min_isr,
            "unclean.leader.election.enable": "false",  # a lagging replica never becomes leader: no acked record lost
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "log.retention.hours": "-1",
            "log.cleaner.backoff.ms": "1000",
        }
        cfg.update(self.overrides)
        return cfg

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        self.props_path.write_text("".join(f"{k}={v}\n" for k, v in self.config().items()))
        (self.data_dir / "log4j.properties").write_text(
            "\n".join([
                "log4j.rootLogger=INFO, file",
                "log4j.appender.file=org.apache.log4j.RollingFileAppender",
                f"log4j.appender.file.File={self.data_dir / 'server.log'}",
                "log4j.appender.file.MaxFileSize=20MB",
                "log4j.appender.file.MaxBackupIndex=2",
                "log4j.appender.file.layout=org.apache.log4j.PatternLayout",
                "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n",
                "log4j.logger.kafka.log.LogCleaner=WARN",
                "log4j.logger.state.change.logger=WARN",
                "",
            ])
        )

    def _java(self, main: str, *args: str, jars: Path) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise PlaylogError("Java is needed to run the local Kafka broker; install a JDK 17 (apt-get install openjdk-17-jre-headless)")
        return [
            java, f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
            f"-Dlog4j.configuration=file:{self.data_dir / 'log4j.properties'}",
            "-cp", f"{jars}/*", main, *args,
        ]

    def formatted_cluster_id(self) -> str | None:
        """The cluster id this node's storage was formatted with (None: not formatted yet)."""
        try:
            text = (self.log_dir / "meta.properties").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id":
                return value.strip()
        return None

    def format_storage(self, jars: Path) -> None:
        found = self.formatted_cluster_id()
        if found is not None:
            if self.cluster_id is not None and found != self.cluster_id:
                raise PlaylogError(f"{self.data_dir} belongs to Kafka cluster {found}, not {self.cluster_id}; "
                                   "remove it to start afresh")
            return
        cluster_id = self.cluster_id or new_cluster_id()
        proc = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.props_path), jars=jars),
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise PlaylogError(f"Kafka storage format failed: {(proc.stdout + proc.stderr).strip()[-600:]}")

    def launch(self) -> None:
        """Start the JVM in the background (formatting the storage the first time); does not wait."""
        if self.alive():
            raise PlaylogError(f"{self.name} is already running (pid {self.proc.pid})")  # type: ignore[union-attr]
        for port in (self.port, self.controller_port):
            if port_open("127.0.0.1", port):
                raise PlaylogError(f"port {port} is already in use; is a broker running? "
                                   "(set PLAYLOG_BOOTSTRAP_SERVERS / PLAYLOG_KAFKA_CONTROLLER_PORT)")
        jars = ensure_jars()
        self._write_config()
        self.format_storage(jars)
        out = open(self.data_dir / "stdout.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self._java("kafka.Kafka", str(self.props_path), jars=jars),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        out.close()
        log.debug("started %s (pid %d) on %s", self.name, self.proc.pid, self.bootstrap)

    def start(self, timeout: float = 60.0) -> float:
        """Start the broker in the background and wait until it serves metadata; returns seconds to ready."""
        t0 = time.monotonic()
        self.launch()
        self.wait_ready(timeout)
        return time.monotonic() - t0

    def wait_ready(self, timeout: float) -> None:
        """Until this node serves metadata in which it is a live (registered, unfenced) broker."""
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        admin = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise PlaylogError(f"Kafka exited with code {self.proc.returncode}; see {self.data_dir / 'server.log'}")
            if port_open("127.0.0.1", self.port):
                if admin is None:
                    admin = AdminClient({"bootstrap.servers": self.bootstrap, "logger": log})
                try:
                    md = admin.list_topics(timeout=2)
                    if self.node_id in md.brokers:
                        return
                except Exception:  # noqa: BLE001 - not ready yet
                    pass
            time.sleep(0.2)
        raise PlaylogError(f"Kafka did not become ready within {timeout:.0f}s; see {self.data_dir / 'server.log'}")

    def kill(self) -> None:
        """SIGKILL the JVM (no shutdown: unflushed pages, no controlled leader hand-over) and reap it."""
        if not self.alive():
            raise PlaylogError(f"{self.name} is not running")
        self.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        self.proc.wait(30)  # type: ignore[union-attr]

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop (SIGTERM, then SIGKILL after ``timeout``)."""
        stop_process(self.proc, timeout)

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalKafkaCluster:
    """``len(ports)`` KRaft nodes on loopback (node ids 1..N), each broker and controller, all of them
    voters of the controller quorum, sharing one cluster id (kept in ``data_dir/cluster.id``).

    With N >= 3 every partition has 3 replicas and ``min.insync.replicas=2``: any one node can be
    killed while producers with ``acks=all`` and consumers go on.
    """

    def __init__(self, data_dir: Path, ports: Sequence[int], controller_ports: Sequence[int], heap: str = "512m",
                 overrides: dict[str, str] | None = None):
        if len(ports) != len(controller_ports) or not ports:
            raise ValueError("one broker port and one controller port per node")
        if len(set(ports) | set(controller_ports)) != 2 * len(ports):
            raise PlaylogError(f"the cluster's ports must be distinct: {list(ports)} {list(controller_ports)}")
        self.data_dir = Path(data_dir).resolve()
        self.name = "kafka-cluster"
        self.replication = min(MAX_REPLICATION, len(ports))
        voters = ",".join(f"{i}@127.0.0.1:{c}" for i, c in enumerate(controller_ports, start=1))
        cluster_id = self._cluster_id()
        self.nodes: dict[int, LocalKafka] = {
            i: LocalKafka(self.data_dir / f"node-{i}", port=p, controller_port=c, heap=heap, node_id=i,
                          voters=voters, cluster_id=cluster_id, replication=self.replication, overrides=overrides)
            for i, (p, c) in enumerate(zip(ports, controller_ports, strict=True), start=1)
        }

    def _cluster_id(self) -> str:
        path = self.data_dir / "cluster.id"
        try:
            return path.read_text().strip()
        except OSError:
            pass
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cid = new_cluster_id()
        path.write_text(cid + "\n")
        return cid

    @property
    def cluster_id(self) -> str:
        return next(iter(self.nodes.values())).cluster_id or ""

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes.values())

    @property
    def port(self) -> int:
        return self.nodes[1].port

    @property
    def controller_port(self) -> int:
        return self.nodes[1].controller_port

    def node(self, node_id: int) -> LocalKafka:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise PlaylogError(f"no node {node_id} in this cluster (nodes {sorted(self.nodes)})") from None

    def alive(self) -> list[int]:
        return [i for i, n in self.nodes.items() if n.alive()]

    def pids(self) -> list[int]:
        return [n.proc.pid for n in self.nodes.values() if n.proc is not None]

    # -- the whole cluster -----------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> float:
        """Start every node (a quorum needs a majority, so all are launched before any is waited
        for) and wait until each is a live broker; returns seconds to ready."""
        t0 = time.monotonic()
        try:
            for n in self.nodes.values():
                n.launch()
            for n in self.nodes.values():
                n.wait_ready(max(1.0, timeout - (time.monotonic() - t0)))
        except BaseException:
            self.stop()
            raise
        secs = time.monotonic() - t0
        log.debug("Kafka cluster of %d nodes ready on %s in %.1fs", len(self.nodes), self.bootstrap, secs)
        return secs

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop of every node (SIGTERM to all, then each is waited for; SIGKILL after ``timeout``)."""
        for n in self.nodes.values():
            if n.alive():
                n.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        for n in self.nodes.values():
            n.stop(timeout)

    # -- one node --------------------------------------------------------------------------------
    def kill(self, node_id: int) -> None:
        """SIGKILL one node's JVM (broker and controller at once)."""
        self.node(node_id).kill()
        log.info("killed Kafka node %d", node_id)

    def restart(self, node_id: int, timeout: float = 90.0) -> float:
        """Start a stopped or killed node again on its data dir; seconds until it is a live broker again."""
        node = self.node(node_id)
        if node.alive():
            raise PlaylogError(f"node {node_id} is running; kill or stop it first")
        secs = node.start(timeout)
        log.info("Kafka node %d back in %.1fs", node_id, secs)
        return secs

    # -- who does what ---------------------------------------------------------------------------
    def admin(self) -> AdminClient:
        """An admin client bootstrapped from the live nodes."""
        from confluent_kafka.admin import AdminClient

        live = [self.nodes[i].bootstrap for i in self.alive()] or [self.bootstrap]
        return AdminClient({"bootstrap.servers": ",".join(live), "logger": log})

    def leader_of(self, topic: str, partition: int = 0, timeout: float = 30.0) -> int:
        """The node that leads ``topic[partition]`` now (waits while the partition has no leader)."""
        admin = self.admin()
        deadline = time.monotonic() + timeout
        while True:
            md = admin.list_topics(topic, timeout=10).topics.get(topic)
            p = md.partitions.get(partition) if md is not None and md.error is None else None
            if p is not None and p.leader in self.nodes and p.error is None:
                return p.leader
            if time.monotonic() > deadline:
                raise PlaylogError(f"{topic}[{partition}] has no leader after {timeout:.0f}s")
            time.sleep(0.2)

    def controller(self, timeout: float = 30.0) -> int:
        """The active controller: the leader of the KRaft quorum, as the live voters' ``quorum-state``
        files say (the newest epoch wins)."""
        deadline = time.monotonic() + timeout
        while True:
            best: tuple[int, int] | None = None  # (epoch, leader)
            for i in self.alive():
                path = self.nodes[i].log_dir / "__cluster_metadata-0" / "quorum-state"
                try:
                    doc = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                leader, epoch = int(doc.get("leaderId", -1)), int(doc.get("leaderEpoch", -1))
                if leader in self.alive() and (best is None or epoch > best[0]):
                    best = (epoch, leader)
            if best is not None:
                return best[1]
            if time.monotonic() > deadline:
                raise PlaylogError(f"no active controller among nodes {self.alive()} after {timeout:.0f}s")
            time.sleep(0.2)

    def under_replicated(self, topics: Iterable[str] | None = None) -> list[str]:
        """Partitions (``topic[p]``) whose in-sync replicas are fewer than their replicas, or leaderless,
        as any live node sees them (each is asked on its own: a node may lag behind the controller)."""
        from confluent_kafka.admin import AdminClient

        wanted = set(topics) if topics is not None else None
        out: set[str] = set()
        for i in self.alive():
            one = AdminClient({"bootstrap.servers": self.nodes[i].bootstrap, "logger": log})
            md = one.list_topics(timeout=10)
            for name, t in md.topics.items():
                if wanted is not None and name not in wanted:
                    continue
                if t.error is not None or not t.partitions:
                    out.add(f"{name} unknown to node {i}")
                for pid, p in t.partitions.items():
                    if p.leader < 0 or set(p.isrs) != set(p.replicas):
                        out.add(f"{name}[{pid}] leader={p.leader} replicas={p.replicas} isr={p.isrs} (node {i})")
            if wanted is not None:
                out |= {f"{name} unknown to node {i}" for name in wanted - set(md.topics)}
        return sorted(out)

    def wait_in_sync(self, timeout: float = 90.0, topics: Iterable[str] | None = None) -> float:
        """Until every partition (of ``topics``, default all) has all its replicas in sync again;
        seconds waited."""
        t0 = time.monotonic()
        topics = list(topics) if topics is not None else None
        while True:
            left = self.under_replicated(topics)
            if not left:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise PlaylogError(f"{len(left)} partition(s) still under-replicated after {timeout:.0f}s, "
                                   f"e.g. {left[0]}")
            time.sleep(0.25)

    def __enter__(self) -> LocalKafkaCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cluster_ports(settings: Settings, nodes: int) -> tuple[list[int], list[int]]:
    """The broker and controller port of each node of a local cluster of ``nodes``.

    When ``PLAYLOG_BOOTSTRAP_SERVERS`` lists one address per node, node i listens on the i-th;
    when it lists one, node i listens on its port + 2(i-1). Controllers: ``PLAYLOG_KAFKA_CONTROLLER_PORT``
    + 2(i-1). So the defaults are 9092/9093, 9094/9095, 9096/9097.
    """
    addrs = [a.strip() for a in settings.bootstrap_servers.split(",") if a.strip()]
    hosts_ports = []
    for a in addrs:
        host, _, port = a.rpartition(":")
        if host not in ("127.0.0.1", "localhost", "") or not port.isdigit():
            raise PlaylogError(f"the local broker runs on loopback only; PLAYLOG_BOOTSTRAP_SERVERS is {settings.bootstrap_servers}")
        hosts_ports.append(int(port))
    if len(hosts_ports) >= nodes:
        ports = hosts_ports[:nodes]
    elif len(hosts_ports) == 1:
        ports = [hosts_ports[0] + PORT_STRIDE * i for i in range(nodes)]
    else:
        raise PlaylogError(f"PLAYLOG_BOOTSTRAP_SERVERS lists {len(hosts_ports)} addresses for {nodes} nodes: "
                           "give one, or one per node")
    controllers = [settings.controller_port + PORT_STRIDE * i for i in range(nodes)]
    return ports, controllers


def from_settings(settings: Settings, nodes: int = 1) -> LocalKafka | LocalKafkaCluster:
    """The local broker (``nodes`` 1, data in ``PLAYLOG_DATA_DIR/kafka``) or cluster (data in
    ``PLAYLOG_DATA_DIR/kafka/node-<id>``) where the settings say (see :func:`cluster_ports`)."""
    if nodes < 1:
        raise PlaylogError(f"a cluster needs at least one node, not {nodes}")
    ports, controllers = cluster_ports(settings, nodes)
    if nodes == 1:
        return LocalKafka(settings.data_dir / "kafka", port=ports[0], controller_port=controllers[0])
    return LocalKafkaCluster(settings.data_dir / "kafka", ports, controllers)


@click.command("broker")
@click.option("--nodes", type=click.IntRange(1, 5), default=1, show_default=True,
              help="KRaft nodes (each broker and controller); 3 gives replication 3 with min.insync.replicas 2.")
def broker_command(nodes: int) -> None:
    """Run the local Kafka broker (KRaft) in the foreground until Ctrl-C.

    Data lives under PLAYLOG_DATA_DIR/kafka (a cluster: kafka/node-N); the port comes from
    PLAYLOG_BOOTSTRAP_SERVERS. With --nodes 3, node N listens on that port + 2(N-1) (or on the
    N-th address when PLAYLOG_BOOTSTRAP_SERVERS lists three) and its controller on
    PLAYLOG_KAFKA_CONTROLLER_PORT + 2(N-1); a node that exits is reported and the others go on.
    Keep the same --nodes for a data dir.
    """
    kafka = from_settings(load(), nodes)
    with sigterm_as_interrupt():  # SIGTERM stops the broker too, not only this Python process
        try:
            seconds = kafka.start()
            what = f"Kafka {KAFKA_VERSION}" if nodes == 1 else f"Kafka {KAFKA_VERSION} cluster of {nodes} nodes"
            click.echo(f"{what} ready on {kafka.bootstrap} in {seconds:.1f}s (data: {kafka.data_dir}); "
                       "Ctrl-C stops it")
            members = list(kafka.nodes.values()) if isinstance(kafka, LocalKafkaCluster) else [kafka]
            reported: set[str] = set()
            while True:  # a cluster goes on while a node is down (killed to try a failover, say)
                dead = [n for n in members if not n.alive()]
                for n in dead:
                    if n.name not in reported:
                        reported.add(n.name)
                        click.echo(f"Kafka {n.name} exited with code {n.proc.returncode if n.proc else '?'}; "
                                   f"see {n.data_dir / 'server.log'}", err=True)
                if len(dead) == len(members):
                    raise PlaylogError("every Kafka node has exited")
                reported &= {n.name for n in dead}
                time.sleep(0.5)
        except KeyboardInterrupt:
            click.echo("stopping Kafka...")
        finally:
            kafka.stop()
