"""Built-in development secrets are refused beyond loopback (core.settings.check_secrets / require_secrets)."""

from __future__ import annotations

import logging

import pytest

from core.errors import PlaylogError
from core.settings import (
    DEV_PII_MASTER_KEY,
    DEV_SIGNING_KEYS,
    DEV_TOKEN_SECRET,
    SECRET_VARIABLES,
    Settings,
    check_secrets,
    dev_secrets_in_use,
    is_loopback,
    load,
    require_secrets,
)

SET = {"PLAYLOG_TOKEN_SECRET": "a-real-token-secret-0123456789", "PLAYLOG_SIGNING_KEYS": "k9:a-real-signing-key-0123",
       "PLAYLOG_PII_MASTER_KEY": "a-real-pii-master-key-0123456789"}


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "localhost", "::1", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "10.0.0.5", "192.168.1.2", "example.com", "api.internal"])
def test_non_loopback_hosts(host: str) -> None:
    assert not is_loopback(host)


def test_defaults_are_all_development_secrets() -> None:
    assert dev_secrets_in_use(load({})) == list(SECRET_VARIABLES)
    assert check_secrets(load({}), "0.0.0.0") == list(SECRET_VARIABLES)
    assert check_secrets(load({}), "0.0.0.0", ["PLAYLOG_SIGNING_KEYS"]) == ["PLAYLOG_SIGNING_KEYS"]
    assert check_secrets(load({}), "127.0.0.1") == []  # loopback: allowed (with a warning, see below)
    assert Settings().token_secret == DEV_TOKEN_SECRET and Settings().pii_master_key == DEV_PII_MASTER_KEY


def test_set_secrets_pass_and_a_dev_key_left_in_the_ring_is_caught() -> None:
    assert check_secrets(load(SET), "0.0.0.0") == []
    kid, secret = next(iter(DEV_SIGNING_KEYS.items()))
    ring = {**SET, "PLAYLOG_SIGNING_KEYS": f"k9:a-real-signing-key-0123,{kid}:{secret}"}
    assert check_secrets(load(ring), "0.0.0.0") == ["PLAYLOG_SIGNING_KEYS"]
    # the public default set explicitly is still the public default
    assert check_secrets(load({**SET, "PLAYLOG_TOKEN_SECRET": DEV_TOKEN_SECRET}), "0.0.0.0") == ["PLAYLOG_TOKEN_SECRET"]


def test_require_refuses_beyond_loopback_in_one_line_naming_the_variable() -> None:
    with pytest.raises(PlaylogError) as info:
        require_secrets(load({}), "0.0.0.0", ["PLAYLOG_TOKEN_SECRET", "PLAYLOG_SIGNING_KEYS"], "playlog api")
    message = str(info.value)
    assert "\n" not in message and "PLAYLOG_TOKEN_SECRET" in message and "PLAYLOG_SIGNING_KEYS" in message
    assert "0.0.0.0" in message and info.value.exit_code == 2
    require_secrets(load(SET), "0.0.0.0", ["PLAYLOG_TOKEN_SECRET", "PLAYLOG_SIGNING_KEYS"], "playlog api")


def test_require_warns_on_loopback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        left = require_secrets(load({}), "127.0.0.1", ["PLAYLOG_SIGNING_KEYS"], "playlog cdn")
    assert left == ["PLAYLOG_SIGNING_KEYS"]
    assert any("PLAYLOG_SIGNING_KEYS" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_unknown_variable_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        dev_secrets_in_use(load({}), ["PLAYLOG_NOPE"])


def test_a_dev_secret_left_in_the_token_key_ring_is_caught() -> None:
    ring = {**SET, "PLAYLOG_TOKEN_KEYS": f"t9:a-real-token-key-0123456789,t0:{DEV_TOKEN_SECRET}"}
    assert check_secrets(load(ring), "0.0.0.0") == ["PLAYLOG_TOKEN_SECRET"]
    assert check_secrets(load({**SET, "PLAYLOG_TOKEN_KEYS": "t9:a-real-token-key-0123456789"}), "0.0.0.0") == []
