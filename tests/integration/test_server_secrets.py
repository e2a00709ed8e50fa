"""Servers refuse to bind beyond loopback with a built-in development secret (``playlog api`` / ``cdn``).

Scenario: ``playlog api`` and ``playlog cdn`` started as processes with no secret set. We expect, on
``--host 0.0.0.0``: exit status 2 and one line naming the variable, no traceback; with the secrets
set: the server starts (answers HTTP), and a token forged with the public development secret is
refused (401); on 127.0.0.1 with the defaults: it starts and logs a warning naming the variable.
No broker is needed (the API answers /healthz 503 while it has none; that is still "started").
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from core.settings import DEV_TOKEN_SECRET
from devstack.supervisor import Child, free_port
from playback import auth
from tests.support.playback_procs import PLAYLOG, base_env, http, tail, wait_until

SECRETS = {"PLAYLOG_TOKEN_SECRET": "secrets-test-token-secret-0123456789",
           "PLAYLOG_SIGNING_KEYS": "s1:secrets-test-signing-key-0123456789",
           "PLAYLOG_PII_MASTER_KEY": "secrets-test-pii-master-key-0123456789"}
VERBS = {"api": ("PLAYLOG_API_PORT", "PLAYLOG_TOKEN_SECRET"), "cdn": ("PLAYLOG_CDN_PORT", "PLAYLOG_SIGNING_KEYS")}


def _env(tmp_path: Path, verb: str, port: int, **extra: str) -> dict[str, str]:
    # a broker port nothing listens on: these servers must start (and answer) without one
    return base_env(PLAYLOG_DATA_DIR=str(tmp_path / "data"), PLAYLOG_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
                    PLAYLOG_TOPIC_PREFIX="secrets.", **{VERBS[verb][0]: str(port)}, **extra)


def _started(child: Child, port: int) -> None:
    def answers() -> bool:
        assert child.alive(), f"{child.name} exited with {child.returncode}:\n{tail(child.log)}"
        try:
            return http("GET", port, "/healthz", timeout=5)[0] in (200, 503)
        except OSError:
            return False

    wait_until(f"{child.name} to answer", answers, timeout=60, on_timeout=lambda: tail(child.log))


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_defaults_beyond_loopback_exit_2_naming_the_variable(verb: str, tmp_path: Path) -> None:
    env = _env(tmp_path, verb, free_port())
    out = subprocess.run([PLAYLOG, verb, "--host", "0.0.0.0"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and VERBS[verb][1] in lines[0] and "Traceback" not in out.stderr, out.stderr
    # the address may come from the environment too
    env["PLAYLOG_API_HOST" if verb == "api" else "PLAYLOG_CDN_HOST"] = "0.0.0.0"
    out = subprocess.run([PLAYLOG, verb], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and VERBS[verb][1] in out.stderr, out.stderr


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_set_secrets_start_beyond_loopback(verb: str, tmp_path: Path) -> None:
    port = free_port()
    child = Child(verb, [PLAYLOG, verb, "--host", "0.0.0.0"], _env(tmp_path, verb, port, **SECRETS),
                  tmp_path / f"{verb}.log").start()
    try:
        _started(child, port)
        if verb == "api":  # a token forged with the public development secret is refused
            forged = auth.issue_token("someone", DEV_TOKEN_SECRET, now=time.time(), ttl=600)
            assert http("GET", port, "/v1/tracks/x", token=forged)[0] == 401
    finally:
        child.stop()
    assert "development" not in tail(child.log)


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_defaults_on_loopback_start_with_a_warning(verb: str, tmp_path: Path) -> None:
    port = free_port()
    child = Child(verb, [PLAYLOG, verb, "--host", "127.0.0.1"], _env(tmp_path, verb, port),
                  tmp_path / f"{verb}.log").start()
    try:
        _started(child, port)
    finally:
        child.stop()
    text = child.log.read_text(errors="replace")
    warnings = [line for line in text.splitlines() if "WARNING" in line and VERBS[verb][1] in line]
    assert warnings, text[:3000]
