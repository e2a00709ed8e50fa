"""Verbs of the delivery side: ``playlog api``, ``playlog cdn``, ``playlog token``, ``playlog oauth``."""

from __future__ import annotations

import errno
import time

import click

from core.errors import PlaylogError

# The secrets each server uses (core.settings.require_secrets refuses their development values
# beyond loopback): the API verifies tokens, signs segment URLs and decrypts the Subsonic app
# passwords (PLAYLOG_PII_MASTER_KEY); the CDN verifies URLs.
API_SECRETS = ("PLAYLOG_TOKEN_SECRET", "PLAYLOG_SIGNING_KEYS", "PLAYLOG_PII_MASTER_KEY")
CDN_SECRETS = ("PLAYLOG_SIGNING_KEYS",)


@click.command("api")
@click.option("--host", default=None, help="Bind address (default PLAYLOG_API_HOST, 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="Port (default PLAYLOG_API_PORT, 8700)."
)
def api_command(host: str | None, port: int | None) -> None:
    """Run the playback API in the foreground until Ctrl-C.

    Follows the view topics (and the player and listening topics) of PLAYLOG_TOPIC_PREFIX on
    PLAYLOG_BOOTSTRAP_SERVERS into in-memory replicas, serves the Spotify-shaped /v1 routes (bearer
    tokens: playlog token USER_ID), /openapi.json, /metrics and /healthz. Every other route answers
    503 (Retry-After) until the replicas reached the end offsets seen at start; writes are answered
    once Kafka acknowledged them (503 while the broker is unreachable).
    Segment URLs point at PLAYLOG_CDN_BASE_URL, signed with PLAYLOG_SIGNING_KEYS.
    The OpenSubsonic API is under /rest (app passwords: playlog subsonic password USER_ID).
    Beyond loopback it refuses to start while PLAYLOG_TOKEN_SECRET, PLAYLOG_SIGNING_KEYS or
    PLAYLOG_PII_MASTER_KEY has its built-in development value.
    """
    from core.settings import load, require_secrets
    from playback import app

    try:
        settings = load()
    except ValueError as exc:
        raise PlaylogError(str(exc)) from None
    host = host or settings.api_host
    port = settings.api_port if port is None else port
    require_secrets(settings, host, API_SECRETS, "playlog api")
    click.echo(
        f"API on http://{host}:{port} (topics {settings.topic_prefix}*, broker {settings.bootstrap_servers}, "
        f"CDN {settings.cdn_base_url}); Ctrl-C to stop",
        err=True,
    )
    try:
        app.run(settings, host, port)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise PlaylogError(
                f"cannot listen on {host}:{port}: {exc.strerror} (set PLAYLOG_API_PORT or --port)"
            ) from None
        raise


@click.command("cdn")
@click.option("--host", default=None, help="Bind address (default PLAYLOG_CDN_HOST, 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="Port (default PLAYLOG_CDN_PORT, 8701)."
)
def cdn_command(host: str | None, port: int | None) -> None:
    """Run the CDN host in the foreground until Ctrl-C.

    Serves GET/HEAD /audio/{file_id}/{segment}?exp=&kid=[&ter=]&sig= from the audio store under
    PLAYLOG_DATA_DIR (signed with PLAYLOG_SIGNING_KEYS), plus /metrics and /healthz. Follows the
    catalog and rights views of PLAYLOG_TOPIC_PREFIX on PLAYLOG_BOOTSTRAP_SERVERS and refuses
    segments of renditions taken down in the URL's territory.
    Edge cache size: PLAYLOG_CDN_CACHE_BYTES (default 256 MiB).
    Beyond loopback it refuses to start while PLAYLOG_SIGNING_KEYS has its built-in development value.
    """
    from core.settings import load, require_secrets
    from playback import cdn

    try:
        settings = load()
    except ValueError as exc:
        raise PlaylogError(str(exc)) from None
    cache_bytes = cdn.cache_bytes_from_env()  # fail fast on a bad value
    host = host or settings.cdn_host
    port = settings.cdn_port if port is None else port
    require_secrets(settings, host, CDN_SECRETS, "playlog cdn")
    audio_dir = settings.data_dir / "audio"
    if not audio_dir.is_dir():
        click.echo(
            f"note: {audio_dir} does not exist yet; every segment is 404 until audio is ingested", err=True
        )
    click.echo(
        f"CDN on http://{host}:{port} serving {audio_dir} (keys: {', '.join(settings.signing_keys)}; "
        f"cache {cache_bytes} bytes); Ctrl-C to stop",
        err=True,
    )
    try:
        cdn.run(host, port, settings)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise PlaylogError(
                f"cannot listen on {host}:{port}: {exc.strerror} (set PLAYLOG_CDN_PORT or --port)"
            ) from None
        raise


@click.command("token")
@click.argument("user_id")
@click.option("--ttl", type=int, default=3600, show_default=True, help="Lifetime in seconds.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="A scope to grant (repeatable); default: every Spotify scope.",
)
def token_command(user_id: str, ttl: int, scopes: tuple[str, ...]) -> None:
    """Print a bearer token for USER_ID (signed with the first key of PLAYLOG_TOKEN_KEYS, else with
    PLAYLOG_TOKEN_SECRET). Apps get theirs through OAuth: /authorize and /api/token (playlog oauth)."""
    from core.settings import load
    from playback import auth

    if ttl <= 0:
        raise PlaylogError(f"--ttl must be a positive number of seconds, got {ttl}")
    try:
        token = auth.issue_token(
            user_id, auth.key_ring(load()), now=time.time(), ttl=ttl, scopes=scopes or auth.DEFAULT_SCOPES
        )
    except ValueError as exc:
        raise PlaylogError(f"cannot issue a token: {exc}") from None
    click.echo(token)


@click.group("oauth")
def oauth_group() -> None:
    """OAuth 2.0 clients of the API (/authorize, /api/token), kept in PLAYLOG_OAUTH_CLIENTS
    (default PLAYLOG_DATA_DIR/oauth/clients.json)."""


@oauth_group.group("client")
def oauth_client_group() -> None:
    """Register, list and remove OAuth clients."""


def _store():
    from core.settings import load
    from playback.oauth.clients import ClientStore

    try:
        return ClientStore(load().oauth_clients_path)
    except ValueError as exc:
        raise PlaylogError(str(exc)) from None


@oauth_client_group.command("add")
@click.option("--name", default="", help="A name shown on the consent page.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="An allowed redirect URI (repeatable).")
@click.option("--confidential", is_flag=True, help="Give the client a secret (client credentials, plain code flow).")
@click.option("--client-id", default=None, help="Choose the client id (default: random).")
def oauth_client_add(name: str, redirect_uris: tuple[str, ...], confidential: bool, client_id: str | None) -> None:
    """Register a client; prints ``client_id`` (and ``client_secret``: shown only now)."""
    if not redirect_uris and not confidential:
        raise PlaylogError("a public client needs at least one --redirect-uri")
    try:
        client, secret = _store().add(name, list(redirect_uris), confidential=confidential, client_id=client_id)
    except ValueError as exc:
        raise PlaylogError(f"cannot add the client: {exc}") from None
    click.echo(f"client_id={client.client_id}")
    if secret is not None:
        click.echo(f"client_secret={secret}")


@oauth_client_group.command("list")
def oauth_client_list() -> None:
    """One line per client: id, kind, name, redirect URIs."""
    for c in _store().all():
        kind = "confidential" if c.confidential else "public"
        click.echo(f"{c.client_id}\t{kind}\t{c.name}\t{' '.join(c.redirect_uris)}")


@oauth_client_group.command("remove")
@click.argument("client_id")
def oauth_client_remove(client_id: str) -> None:
    """Forget a client (its tokens stay valid until they expire)."""
    if not _store().remove(client_id):
        raise PlaylogError(f"no client {client_id}")
