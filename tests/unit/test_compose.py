"""docker-compose.yml parses and agrees with the code's defaults (ports, variables, verbs)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from core.settings import Settings
from playlog import cli

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
CONFIG_DOC = (ROOT / "core" / "settings.py").read_text()


def _playlog_services() -> dict[str, dict]:
    return {n: s for n, s in COMPOSE["services"].items() if s.get("image") == "playlog:latest"}


def test_services_present() -> None:
    names = set(COMPOSE["services"])
    assert {"kafka", "clickhouse", "worker", "api", "cdn"} <= names


def test_ports_match_code_defaults() -> None:
    d = Settings()
    svc = COMPOSE["services"]
    assert f"{d.api_port}:{d.api_port}" in svc["api"]["ports"]
    assert f"{d.cdn_port}:{d.cdn_port}" in svc["cdn"]["ports"]
    assert f"{d.broker_port}:{d.broker_port}" in svc["kafka"]["ports"]
    ch_port = re.search(r":(\d+)/", d.clickhouse_url).group(1)
    assert f"{ch_port}:{ch_port}" in svc["clickhouse"]["ports"]


def test_variables_are_known_to_the_code() -> None:
    documented = set(re.findall(r"PLAYLOG_[A-Z_]+", CONFIG_DOC))
    for name, svc in _playlog_services().items():
        env = svc["environment"]
        assert env["PLAYLOG_API_PORT"] == str(Settings().api_port), name
        assert env["PLAYLOG_CDN_PORT"] == str(Settings().cdn_port), name
        unknown = set(env) - documented
        assert not unknown, f"{name}: variables the code does not read: {unknown}"
        assert env["PLAYLOG_BOOTSTRAP_SERVERS"].endswith(f":{Settings().broker_port}")


def test_commands_are_playlog_verbs() -> None:
    for name, svc in _playlog_services().items():
        cmd = svc["command"]
        assert cmd[0] == "playlog", name
        assert cmd[1] in cli.VERBS, f"{name}: unknown verb {cmd[1]}"


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
