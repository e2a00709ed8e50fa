"""A real local Apache Kafka (KRaft, single node: broker + controller) for development and tests.

The jars come from Maven Central through ``devstack/kafka/pom.xml`` (``ensure_jars``) and run on the
machine's Java. Log dirs live under ``PLAYLOG_DATA_DIR/kafka`` so data survives a restart.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import click

from core.errors import PlaylogError
from core.settings import KAFKA_VERSION, Settings, load
from devstack.supervisor import free_port, port_open, sigterm_as_interrupt, stop_process  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)


POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"


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


class LocalKafka:
    """One KRaft node on loopback, its data under ``data_dir``."""

    def __init__(self, data_dir: Path, port: int = 9092, controller_port: int = 9093, heap: str = "768m"):
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def props_path(self) -> Path:
        return self.data_dir / "server.properties"

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        self.props_path.write_text(
            "\n".join([
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={self.data_dir / 'logs'}",
                "num.partitions=4",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=8",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                "log.retention.hours=-1",
                "log.cleaner.backoff.ms=1000",
                "",
            ])
        )
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

    def format_storage(self, jars: Path) -> None:
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        cluster_id = uuid.uuid4().hex[:22]
        proc = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.props_path), jars=jars),
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise PlaylogError(f"Kafka storage format failed: {proc.stderr.strip()[-300:]}")

    def start(self, timeout: float = 60.0) -> float:
        """Start the broker in the background and wait until it serves metadata; returns seconds to ready."""
        if port_open("127.0.0.1", self.port):
            raise PlaylogError(f"port {self.port} is already in use; is a broker running? (set PLAYLOG_BOOTSTRAP_SERVERS)")
        jars = ensure_jars()
        self._write_config()
        self.format_storage(jars)
        t0 = time.monotonic()
        out = open(self.data_dir / "stdout.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self._java("kafka.Kafka", str(self.props_path), jars=jars),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        out.close()
        self.wait_ready(timeout)
        return time.monotonic() - t0

    def wait_ready(self, timeout: float) -> None:
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
                    if md.brokers:
                        return
                except Exception:  # not ready yet
                    pass
            time.sleep(0.2)
        raise PlaylogError(f"Kafka did not become ready within {timeout:.0f}s; see {self.data_dir / 'server.log'}")

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop (SIGTERM, then SIGKILL after ``timeout``)."""
        stop_process(self.proc, timeout)

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def from_settings(settings: Settings) -> LocalKafka:
    host, _, port = settings.bootstrap_servers.split(",")[0].rpartition(":")
    if host not in ("127.0.0.1", "localhost", ""):
        raise PlaylogError(f"the local broker runs on loopback only; PLAYLOG_BOOTSTRAP_SERVERS is {settings.bootstrap_servers}")
    return LocalKafka(settings.data_dir / "kafka", port=int(port), controller_port=settings.controller_port)


@click.command("broker")
def broker_command() -> None:
    """Run the local Kafka broker (KRaft) in the foreground until Ctrl-C.

    Data lives under PLAYLOG_DATA_DIR/kafka; the port comes from PLAYLOG_BOOTSTRAP_SERVERS.
    """
    kafka = from_settings(load())
    with sigterm_as_interrupt():  # SIGTERM stops the broker too, not only this Python process
        try:
            seconds = kafka.start()
            click.echo(f"Kafka {KAFKA_VERSION} ready on {kafka.bootstrap} in {seconds:.1f}s (data: {kafka.data_dir}); "
                       "Ctrl-C stops it")
            while kafka.proc is not None and kafka.proc.poll() is None:
                time.sleep(0.5)
            raise PlaylogError(f"Kafka exited with code {kafka.proc.returncode if kafka.proc else '?'}")
        except KeyboardInterrupt:
            click.echo("stopping Kafka...")
        finally:
            kafka.stop()
