"""Configuration from ``PLAYLOG_*`` environment variables, with local defaults.

| variable | default | what |
|---|---|---|
| PLAYLOG_BOOTSTRAP_SERVERS | 127.0.0.1:9092 | Kafka bootstrap servers |
| PLAYLOG_DATA_DIR | ./.playlog | broker logs, state, audio store, warehouse, archive |
| PLAYLOG_CLICKHOUSE_URL | clickhouse://127.0.0.1:9000/playlog | ClickHouse (native protocol) |
| PLAYLOG_API_PORT | 8700 | playback API port |
| PLAYLOG_CDN_PORT | 8701 | CDN port |
| PLAYLOG_API_HOST / PLAYLOG_CDN_HOST | 127.0.0.1 | bind addresses |
| PLAYLOG_CDN_BASE_URL | http://127.0.0.1:<CDN port> | public base URL put in signed segment URLs |
| PLAYLOG_SIGNING_KEYS | (a local development key) | CDN URL keys, ``kid:secret,kid:secret`` (first signs) |
| PLAYLOG_TOKEN_SECRET | (a local development secret) | bearer token HMAC secret |
| PLAYLOG_TOPIC_PREFIX | playlog. | prefix of every topic name |
| PLAYLOG_KAFKA_CONTROLLER_PORT | 9093 | KRaft controller port of the local broker |
| PLAYLOG_LOG_LEVEL | INFO | logging level |
| PLAYLOG_CDN_CACHE_BYTES | 268435456 | CDN edge cache budget (bytes) |
| PLAYLOG_WORKER_URLS | http://127.0.0.1:6066 | worker web endpoints (live royalty view), comma separated |
| PLAYLOG_KAFKA_JARS | ~/.cache/playlog/kafka-3.9.1/libs | where the local broker's jars are kept |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str) -> str:
    value = os.environ.get(f"PLAYLOG_{name}")
    return value if value not in (None, "") else default


def _int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"PLAYLOG_{name} must be an integer, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str = "127.0.0.1:9092"
    data_dir: Path = Path(".playlog")
    clickhouse_url: str = "clickhouse://127.0.0.1:9000/playlog"
    api_host: str = "127.0.0.1"
    api_port: int = 8700
    cdn_host: str = "127.0.0.1"
    cdn_port: int = 8701
    cdn_base_url: str = "http://127.0.0.1:8701"
    signing_keys: dict[str, str] = field(default_factory=lambda: {"dev1": "playlog-dev-signing-key"})
    token_secret: str = "playlog-dev-token-secret"
    topic_prefix: str = "playlog."
    controller_port: int = 9093
    log_level: str = "INFO"

    @property
    def broker_port(self) -> int:
        return int(self.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])


def parse_keys(raw: str) -> dict[str, str]:
    """``kid:secret,kid:secret`` -> {kid: secret}; the first key is the one that signs."""
    keys: dict[str, str] = {}
    for part in raw.split(","):
        kid, sep, secret = part.strip().partition(":")
        if not sep or not kid or not secret:
            raise ValueError("PLAYLOG_SIGNING_KEYS must look like 'kid:secret,kid2:secret2'")
        keys[kid] = secret
    return keys


def load() -> Settings:
    """Settings from the environment (read each call, so tests can change it)."""
    cdn_port = _int("CDN_PORT", 8701)
    cdn_host = _env("CDN_HOST", "127.0.0.1")
    keys = _env("SIGNING_KEYS", "")
    return Settings(
        bootstrap_servers=_env("BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        data_dir=Path(_env("DATA_DIR", ".playlog")),
        clickhouse_url=_env("CLICKHOUSE_URL", "clickhouse://127.0.0.1:9000/playlog"),
        api_host=_env("API_HOST", "127.0.0.1"),
        api_port=_int("API_PORT", 8700),
        cdn_host=cdn_host,
        cdn_port=cdn_port,
        cdn_base_url=_env("CDN_BASE_URL", f"http://{cdn_host}:{cdn_port}"),
        signing_keys=parse_keys(keys) if keys else {"dev1": "playlog-dev-signing-key"},
        token_secret=_env("TOKEN_SECRET", "playlog-dev-token-secret"),
        topic_prefix=_env("TOPIC_PREFIX", "playlog."),
        controller_port=_int("KAFKA_CONTROLLER_PORT", 9093),
        log_level=_env("LOG_LEVEL", "INFO"),
    )
