"""Every ``PLAYLOG_*`` environment variable, read in this one place, with local defaults.

No other module reads ``os.environ`` for a ``PLAYLOG_*`` name (a test checks it): they take a
:class:`Settings` from :func:`load`, and child processes get theirs back from :meth:`Settings.to_env`.

| variable | default | what |
|---|---|---|
| PLAYLOG_BOOTSTRAP_SERVERS | 127.0.0.1:9092 | Kafka bootstrap servers |
| PLAYLOG_DATA_DIR | ./.playlog | broker logs, state, audio store, warehouse, archive |
| PLAYLOG_CLICKHOUSE_URL | clickhouse://127.0.0.1:9000/playlog | ClickHouse (native protocol) |
| PLAYLOG_API_PORT | 8700 | playback API port |
| PLAYLOG_CDN_PORT | 8701 | CDN port |
| PLAYLOG_REGISTRY_PORT | 8702 | ``playlog registry`` port (the Schema Registry API) |
| PLAYLOG_API_HOST / PLAYLOG_CDN_HOST | 127.0.0.1 | bind addresses |
| PLAYLOG_CDN_BASE_URL | http://127.0.0.1:<CDN port> | public base URL put in signed segment URLs |
| PLAYLOG_SIGNING_KEYS | (a local development key) | CDN URL keys, ``kid:secret,kid:secret`` (first signs) |
| PLAYLOG_TOKEN_SECRET | (a local development secret) | bearer token HMAC secret |
| PLAYLOG_TOKEN_KEYS | (none: ``t0:<PLAYLOG_TOKEN_SECRET>``) | bearer token key ring, ``kid:secret,kid:secret`` (first signs, all verify; playback/auth.py) |
| PLAYLOG_API_RATE_LIMIT | 50 | per-token request rate of ``/v1`` (requests/s, token bucket refill); 0 turns the limit off |
| PLAYLOG_API_RATE_BURST | 50 | per-token bucket size (requests answered at once before 429) |
| PLAYLOG_CORS_ORIGINS | * | origins browsers may call the API from, comma separated (``*``: any) |
| PLAYLOG_OAUTH_CLIENTS | <data dir>/oauth/clients.json | the registered OAuth clients (``playlog oauth client add``) |
| PLAYLOG_PII_MASTER_KEY | (a local development key) | master key of the per-user PII keys and of the Subsonic app passwords' key |
| PLAYLOG_SCHEMA_REGISTRY_URL | (none: the ids of schemas/registry.json) | an external Confluent-compatible schema registry (credentials in the URL): ``playlog schemas register`` pushes there, every process writes and reads its ids |
| PLAYLOG_TOPIC_PREFIX | playlog. | prefix of every topic name |
| PLAYLOG_KAFKA_CONTROLLER_PORT | 9093 | KRaft controller port of the local broker |
| PLAYLOG_KAFKA_JARS | ~/.cache/playlog/kafka-3.9.1/libs | where the local broker's jars are kept |
| PLAYLOG_LOG_LEVEL | INFO | logging level |
| PLAYLOG_CDN_CACHE_BYTES | 268435456 | CDN edge cache budget (bytes) |
| PLAYLOG_WORKER_URLS | (what ``playlog up`` recorded, else http://127.0.0.1:6066) | worker web endpoints, comma separated |
| PLAYLOG_SINK_FAULT | (none) | tests only: ``<point>:<n>`` SIGKILLs a sink at its n-th batch at ``point`` |
| PLAYLOG_CHECKPOINT_SECONDS | 30 | how often the royalty view's owner writes a checkpoint (worker/checkpoint.py) when it changed |
| PLAYLOG_WORKER_STALL_SECONDS | 60 | a worker with lag on its partitions that processes nothing this long is stalled (``/livez`` 503) |
| PLAYLOG_BATCH_RECS_EVERY | 3600 | ``playlog up`` runs ``playlog batch recs`` (the feature store, batch/recs.py) every this many seconds; 0 turns it off |
| PLAYLOG_WORKER_FAULT | (none) | tests only: ``stall_after:<n>`` makes a worker's agents stop after n batches (once per state dir) |

Secrets. PLAYLOG_TOKEN_SECRET, PLAYLOG_SIGNING_KEYS and PLAYLOG_PII_MASTER_KEY default to development
values written in this file (public). A server bound to anything but loopback refuses to start while
one it uses still has its built-in value (:func:`require_secrets`: one line naming the variables,
exit status 2); on loopback it starts and logs a warning. :func:`check_secrets` is the pure check.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from core.errors import PlaylogError

log = logging.getLogger(__name__)

PREFIX = "PLAYLOG_"
KAFKA_VERSION = "3.9.1"
DEV_SIGNING_KEYS = {"dev1": "playlog-dev-signing-key"}
DEV_TOKEN_SECRET = "playlog-dev-token-secret"
DEV_PII_MASTER_KEY = "playlog-dev-pii-master-key"
DEFAULT_CDN_CACHE_BYTES = 256 * 1024 * 1024


def default_jars_dir() -> Path:
    return Path.home() / ".cache" / "playlog" / f"kafka-{KAFKA_VERSION}" / "libs"


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
    registry_port: int = 8702
    signing_keys: dict[str, str] = field(default_factory=lambda: dict(DEV_SIGNING_KEYS))
    token_secret: str = DEV_TOKEN_SECRET
    pii_master_key: str = DEV_PII_MASTER_KEY
    schema_registry_url: str = ""
    topic_prefix: str = "playlog."
    controller_port: int = 9093
    kafka_jars: Path = field(default_factory=default_jars_dir)
    log_level: str = "INFO"
    cdn_cache_bytes: int = DEFAULT_CDN_CACHE_BYTES
    worker_urls: tuple[str, ...] = ()  # empty: what `playlog up` recorded, else the first worker's default
    sink_fault: str = ""
    worker_stall_seconds: int = 60
    checkpoint_seconds: int = 30
    worker_fault: str = ""
    token_keys: dict[str, str] = field(default_factory=dict)  # empty: {"t0": token_secret}
    api_rate_limit: int = 50
    api_rate_burst: int = 50
    cors_origins: tuple[str, ...] = ("*",)
    oauth_clients: str = ""  # empty: data_dir / "oauth" / "clients.json"
    batch_recs_every: int = 3600  # seconds between `playlog batch recs` runs under `playlog up`; 0: off

    @property
    def oauth_clients_path(self) -> Path:
        return Path(self.oauth_clients) if self.oauth_clients else self.data_dir / "oauth" / "clients.json"

    @property
    def broker_port(self) -> int:
        return int(self.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])

    @property
    def broker_host(self) -> str:
        return self.bootstrap_servers.split(",")[0].rsplit(":", 1)[0]

    def to_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment a child process needs to see these same settings (over ``base``,
        by default this process's environment, so PATH and friends pass through)."""
        env = dict(os.environ if base is None else base)
        for f in fields(self):
            value = getattr(self, f.name)
            name = PREFIX + _ENV_NAMES.get(f.name, f.name.upper())
            if f.name in ("signing_keys", "token_keys"):
                env[name] = ",".join(f"{k}:{v}" for k, v in value.items())
            elif f.name in ("worker_urls", "cors_origins"):
                if value:
                    env[name] = ",".join(value)
                else:
                    env.pop(name, None)
            else:
                env[name] = str(value)
        return env


# field name -> variable name, where they differ
_ENV_NAMES = {"controller_port": "KAFKA_CONTROLLER_PORT", "kafka_jars": "KAFKA_JARS"}


def _env(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(PREFIX + name)
    return value if value not in (None, "") else default


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int | None = None) -> int:
    raw = _env(env, name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{PREFIX}{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{PREFIX}{name} must be >= {minimum}, got {value}")
    return value


def parse_keys(raw: str, variable: str = "PLAYLOG_SIGNING_KEYS") -> dict[str, str]:
    """``kid:secret,kid:secret`` -> {kid: secret}; the first key is the one that signs."""
    keys: dict[str, str] = {}
    for part in raw.split(","):
        kid, sep, secret = part.strip().partition(":")
        if not sep or not kid or not secret:
            raise ValueError(f"{variable} must look like 'kid:secret,kid2:secret2'")
        keys[kid] = secret
    return keys


def parse_urls(raw: str) -> tuple[str, ...]:
    return tuple(u.strip().rstrip("/") for u in raw.split(",") if u.strip())


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment (read each call, so tests can change it)."""
    env = os.environ if env is None else env
    cdn_port = _int(env, "CDN_PORT", 8701)
    cdn_host = _env(env, "CDN_HOST", "127.0.0.1")
    keys = _env(env, "SIGNING_KEYS", "")
    return Settings(
        bootstrap_servers=_env(env, "BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        data_dir=Path(_env(env, "DATA_DIR", ".playlog")),
        clickhouse_url=_env(env, "CLICKHOUSE_URL", "clickhouse://127.0.0.1:9000/playlog"),
        api_host=_env(env, "API_HOST", "127.0.0.1"),
        api_port=_int(env, "API_PORT", 8700),
        cdn_host=cdn_host,
        cdn_port=cdn_port,
        cdn_base_url=_env(env, "CDN_BASE_URL", f"http://{cdn_host}:{cdn_port}"),
        registry_port=_int(env, "REGISTRY_PORT", 8702),
        signing_keys=parse_keys(keys) if keys else dict(DEV_SIGNING_KEYS),
        token_secret=_env(env, "TOKEN_SECRET", DEV_TOKEN_SECRET),
        pii_master_key=_env(env, "PII_MASTER_KEY", DEV_PII_MASTER_KEY),
        schema_registry_url=_env(env, "SCHEMA_REGISTRY_URL", ""),
        topic_prefix=_env(env, "TOPIC_PREFIX", "playlog."),
        controller_port=_int(env, "KAFKA_CONTROLLER_PORT", 9093),
        kafka_jars=Path(_env(env, "KAFKA_JARS", str(default_jars_dir()))),
        log_level=_env(env, "LOG_LEVEL", "INFO"),
        cdn_cache_bytes=_int(env, "CDN_CACHE_BYTES", DEFAULT_CDN_CACHE_BYTES, minimum=0),
        worker_urls=parse_urls(_env(env, "WORKER_URLS", "")),
        sink_fault=_env(env, "SINK_FAULT", ""),
        worker_stall_seconds=_int(env, "WORKER_STALL_SECONDS", 60, minimum=1),
        checkpoint_seconds=_int(env, "CHECKPOINT_SECONDS", 30, minimum=1),
        worker_fault=_env(env, "WORKER_FAULT", ""),
        token_keys=parse_keys(tk, "PLAYLOG_TOKEN_KEYS") if (tk := _env(env, "TOKEN_KEYS", "")) else {},
        api_rate_limit=_int(env, "API_RATE_LIMIT", 50, minimum=0),
        api_rate_burst=_int(env, "API_RATE_BURST", 50, minimum=1),
        cors_origins=parse_urls(_env(env, "CORS_ORIGINS", "*")),
        oauth_clients=_env(env, "OAUTH_CLIENTS", ""),
        batch_recs_every=_int(env, "BATCH_RECS_EVERY", 3600, minimum=0),
    )


# ------------------------------------------------------------------------------------------------
# secrets

SECRET_VARIABLES = ("PLAYLOG_TOKEN_SECRET", "PLAYLOG_SIGNING_KEYS", "PLAYLOG_PII_MASTER_KEY")


def is_loopback(host: str) -> bool:
    """True for a loopback bind address (127.0.0.0/8, ::1, ``localhost``); False for anything else,
    including ``0.0.0.0`` / ``::`` / ``""`` (every interface) and any other host name."""
    name = host.strip().strip("[]").lower()
    if name in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_dev_secret(settings: Settings, variable: str) -> bool:
    if variable == "PLAYLOG_TOKEN_SECRET":  # also any key of the PLAYLOG_TOKEN_KEYS ring: every key verifies
        return settings.token_secret == DEV_TOKEN_SECRET or DEV_TOKEN_SECRET in settings.token_keys.values()
    if variable == "PLAYLOG_SIGNING_KEYS":  # any key of the ring: every key verifies
        dev = set(DEV_SIGNING_KEYS.values())
        return any(secret in dev for secret in settings.signing_keys.values())
    if variable == "PLAYLOG_PII_MASTER_KEY":
        return settings.pii_master_key == DEV_PII_MASTER_KEY
    raise ValueError(f"{variable} is not a secret setting (one of {', '.join(SECRET_VARIABLES)})")


def dev_secrets_in_use(settings: Settings, variables: Iterable[str] = SECRET_VARIABLES) -> list[str]:
    """The secret variables among ``variables`` that still hold their built-in development value."""
    return [v for v in variables if _is_dev_secret(settings, v)]


def check_secrets(settings: Settings, host: str, variables: Iterable[str] = SECRET_VARIABLES) -> list[str]:
    """The secret variables that forbid binding ``host``: those among ``variables`` still at their
    built-in development value, unless ``host`` is loopback (then none)."""
    left = dev_secrets_in_use(settings, variables)
    return [] if is_loopback(host) else left


def require_secrets(settings: Settings, host: str, variables: Iterable[str], server: str) -> list[str]:
    """The check every server runs before it binds ``host``: with a built-in development secret among
    ``variables``, raise :class:`PlaylogError` (one line naming them, exit 2) unless ``host`` is loopback,
    where a warning is logged instead. Returns the development secrets in use (empty when none)."""
    left = dev_secrets_in_use(settings, variables)
    if not left:
        return left
    names = ", ".join(left)
    if check_secrets(settings, host, left):
        raise PlaylogError(
            f"{server}: refusing to listen on {host or 'every interface'} with the built-in development "
            f"value of {names}; set {'it' if len(left) == 1 else 'them'} to a secret of your own"
        )
    log.warning("%s uses the built-in development value of %s: fine on loopback (%s), refused on any "
                "other address", server, names, host)
    return left
