"""docker-compose.yml parses, agrees with the code's defaults (ports, variables, verbs, options) and
holds its production properties: 3 KRaft brokers with replication 3 and min.insync.replicas 2,
workers each with its own name, state volume and liveness healthcheck, sinks / API / CDN scalable on
their own behind a gateway, secrets required."""

from __future__ import annotations

import re
from pathlib import Path

import click
import yaml

from core.settings import Settings
from devstack.kafka import cluster_ports
from playlog import cli
from topics.admin import min_insync_for

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
CONFIG_DOC = (ROOT / "core" / "settings.py").read_text()
SERVICES: dict[str, dict] = COMPOSE["services"]


def _playlog_services() -> dict[str, dict]:
    return {n: s for n, s in SERVICES.items() if s.get("image") == "playlog:latest"}


def _brokers() -> dict[str, dict]:
    return {n: s for n, s in SERVICES.items() if str(s.get("image", "")).startswith("apache/kafka:")}


def _verb(svc: dict) -> str:
    return svc["command"][1]


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def _workers() -> dict[str, dict]:
    return {n: s for n, s in _playlog_services().items() if _verb(s) == "worker"}


def _volume_at(svc: dict, target: str) -> str | None:
    """The named volume (or host path) mounted at ``target`` in ``svc``."""
    for v in svc.get("volumes", []):
        source, _, rest = v.partition(":")
        if rest.split(":")[0] == target:
            return source
    return None


def test_services_present() -> None:
    names = set(SERVICES)
    assert {"kafka-1", "kafka-2", "kafka-3", "clickhouse", "topics", "api", "cdn", "gateway",
            "sink-parquet", "sink-clickhouse", "registry"} <= names
    assert len(_workers()) >= 2


def test_ports_match_code_defaults() -> None:
    d = Settings()
    gateway = SERVICES["gateway"]["ports"]
    assert f"{d.api_port}:{d.api_port}" in gateway
    assert f"{d.cdn_port}:{d.cdn_port}" in gateway
    assert f"{d.registry_port}:{d.registry_port}" in gateway  # the schema registry, for downstream consumers
    assert str(d.registry_port) in SERVICES["registry"]["expose"]
    assert f"reverse_proxy registry:{d.registry_port}" in COMPOSE["configs"]["gateway"]["content"]
    ch_port = re.search(r":(\d+)/", d.clickhouse_url).group(1)
    assert f"{ch_port}:{ch_port}" in SERVICES["clickhouse"]["ports"]


def test_three_kraft_brokers_form_one_quorum() -> None:
    brokers = _brokers()
    assert len(brokers) == 3
    envs = {n: s["environment"] for n, s in brokers.items()}
    ids = {n: int(e["KAFKA_NODE_ID"]) for n, e in envs.items()}
    assert sorted(ids.values()) == [1, 2, 3]
    voters = {e["KAFKA_CONTROLLER_QUORUM_VOTERS"] for e in envs.values()}
    assert len(voters) == 1, "every node must list the same voters"
    assert sorted(voters.pop().split(",")) == sorted(f"{ids[n]}@{n}:9093" for n in brokers)
    assert len({e["CLUSTER_ID"] for e in envs.values()}) == 1, "one cluster id for every node"
    for n, e in envs.items():
        assert e["KAFKA_PROCESS_ROLES"] == "broker,controller", n
        assert f"INTERNAL://{n}:9092" in e["KAFKA_ADVERTISED_LISTENERS"].split(","), n
        assert "healthcheck" in brokers[n], n


def test_brokers_replicate_3_with_min_insync_2() -> None:
    for n, svc in _brokers().items():
        e = svc["environment"]
        assert int(e["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == 3, n
        assert int(e["KAFKA_MIN_INSYNC_REPLICAS"]) == 2 == min_insync_for(3), n
        assert int(e["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 3, n
        assert int(e["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) == 3, n
        assert int(e["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == 2, n
        assert str(e["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"]).lower() == "false", n
        assert str(e["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]).lower() == "false", n
    topics = SERVICES["topics"]["command"]
    assert topics[1:3] == ["topics", "create"] and _option(topics, "--replication") == "3"


def test_each_broker_keeps_its_own_data_and_the_host_sees_the_local_layout() -> None:
    """Data on a volume of its own at the log dir; from the host, the ports of ``playlog broker --nodes 3``."""
    brokers = _brokers()
    volumes = [_volume_at(s, s["environment"]["KAFKA_LOG_DIRS"]) for s in brokers.values()]
    assert None not in volumes and len(set(volumes)) == 3
    assert all(v in COMPOSE["volumes"] for v in volumes)
    host_ports, _ = cluster_ports(Settings(), 3)
    by_id = sorted(brokers.values(), key=lambda s: int(s["environment"]["KAFKA_NODE_ID"]))
    for port, svc in zip(host_ports, by_id, strict=True):
        assert f"EXTERNAL://localhost:{port}" in svc["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")
        assert f"{port}:29092" in svc["ports"]
    assert host_ports[0] == Settings().broker_port


def test_clients_bootstrap_from_every_broker() -> None:
    internal = sorted(f"{n}:9092" for n in _brokers())
    for name, svc in _playlog_services().items():
        assert sorted(svc["environment"]["PLAYLOG_BOOTSTRAP_SERVERS"].split(",")) == internal, name
        deps = svc.get("depends_on", {})
        for broker in _brokers():
            assert deps.get(broker, {}).get("condition") == "service_healthy", f"{name} must wait for {broker}"
        if name != "topics":
            assert deps.get("topics", {}).get("condition") == "service_completed_successfully", name


def test_workers_have_their_own_names_state_and_liveness_check() -> None:
    workers = _workers()
    names = [_option(s["command"], "--name") for s in workers.values()]
    assert None not in names and len(set(names)) == len(names), names
    states = {n: _volume_at(s, s["environment"]["PLAYLOG_DATA_DIR"]) for n, s in workers.items()}
    assert None not in states.values() and len(set(states.values())) == len(states), states
    assert all(v in COMPOSE["volumes"] for v in states.values())
    others = {v.split(":")[0] for n, s in SERVICES.items() if n not in workers for v in s.get("volumes", [])}
    assert not set(states.values()) & others, "a worker's state volume is shared with another service"
    for n, s in workers.items():
        assert s.get("deploy", {}).get("replicas", 1) == 1 and "scale" not in s, f"{n}: replicas share name and state"
        port = _option(s["command"], "--web-port")
        test = " ".join(s["healthcheck"]["test"])
        assert port and f"127.0.0.1:{port}/livez" in test, (n, test)
        assert "start_period" in s["healthcheck"], n


def test_sinks_api_and_cdn_scale_on_their_own_behind_the_gateway() -> None:
    d = Settings()
    scalable = {n: s for n, s in _playlog_services().items() if _verb(s) in ("api", "cdn", "sink")}
    assert {"api", "cdn", "sink-parquet", "sink-clickhouse"} <= set(scalable)
    for n, s in scalable.items():
        assert "ports" not in s, f"{n}: a fixed host port stops it from scaling"
        assert "container_name" not in s, n
        if _verb(s) == "sink":
            assert "--follow" in s["command"], f"{n}: a sink without --follow exits once caught up"
    assert str(d.api_port) in SERVICES["api"]["expose"] and str(d.cdn_port) in SERVICES["cdn"]["expose"]
    assert SERVICES["api"]["deploy"]["replicas"] >= 2
    caddyfile = COMPOSE["configs"]["gateway"]["content"]
    assert f"dynamic a api {d.api_port}" in caddyfile and f"dynamic a cdn {d.cdn_port}" in caddyfile
    assert f":{d.api_port} {{" in caddyfile and f":{d.cdn_port} {{" in caddyfile
    assert SERVICES["gateway"]["configs"][0]["source"] == "gateway"


def test_variables_are_known_to_the_code() -> None:
    documented = set(re.findall(r"PLAYLOG_[A-Z_]+", CONFIG_DOC))
    for name, svc in _playlog_services().items():
        env = svc["environment"]
        assert env["PLAYLOG_API_PORT"] == str(Settings().api_port), name
        assert env["PLAYLOG_CDN_PORT"] == str(Settings().cdn_port), name
        unknown = set(env) - documented
        assert not unknown, f"{name}: variables the code does not read: {unknown}"
        for addr in env["PLAYLOG_BOOTSTRAP_SERVERS"].split(","):
            assert addr.endswith(f":{Settings().broker_port}"), addr


def test_commands_are_playlog_verbs_with_options_they_take() -> None:
    for name, svc in _playlog_services().items():
        cmd = svc["command"]
        assert cmd[0] == "playlog", name
        assert cmd[1] in cli.VERBS, f"{name}: unknown verb {cmd[1]}"
        ctx = click.Context(cli.cli)
        command, args = cli.cli.get_command(ctx, cmd[1]), list(cmd[2:])
        while isinstance(command, click.Group):
            command, args = command.get_command(ctx, args[0]), args[1:]
            assert command is not None, f"{name}: unknown subcommand in {cmd}"
        command.make_context(" ".join(cmd[:2]), args)  # raises on an option the verb does not take


def test_secrets_are_required_not_defaulted() -> None:
    """Every secret must be given to ``docker compose`` (``${VAR:?...}``): no built-in or change-me value."""
    from core.settings import SECRET_VARIABLES

    text = (ROOT / "docker-compose.yml").read_text()
    assert "change-me" not in text
    for name, svc in _playlog_services().items():
        env = svc["environment"]
        for var in SECRET_VARIABLES:
            assert var in env, f"{name}: {var} is not passed"
            assert re.fullmatch(r"\$\{" + var + r":\?[^}]+\}", env[var]), f"{name}: {var} = {env[var]!r} is not required"


def test_the_image_copies_every_package_pyproject_ships() -> None:
    """The compose services run `playlog worker`, sinks, API and CDN from the Dockerfile's image: a
    package pyproject.toml ships but the Dockerfile does not copy is missing there (it was: core,
    worker, devstack, demo and benchmarks)."""
    import re
    import tomllib

    root = Path(__file__).resolve().parents[2]
    shipped = {p.rstrip("*") for p in tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
               ["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) \1$", (root / "Dockerfile").read_text(), re.M))
    assert shipped and shipped <= copied, shipped - copied
