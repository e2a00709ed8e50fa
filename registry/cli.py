"""``playlog registry`` (the schema registry server) and ``playlog schemas ...`` (the local registry's
commands; ``register`` also pushes to the registry named by ``PLAYLOG_SCHEMA_REGISTRY_URL``)."""

from __future__ import annotations

import errno
from pathlib import Path

import click

from core.errors import PlaylogError
from schemas.cli import schemas_group as local_schemas

REGISTRY_SECRETS = ("PLAYLOG_TOKEN_SECRET",)  # operator tokens are verified with it


@click.command("registry")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address.")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port (default PLAYLOG_REGISTRY_PORT, 8702).")
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where registrations made through the API are kept (default "
                   "PLAYLOG_DATA_DIR/registry/store.json, store-empty.json with --empty).")
@click.option("--empty", is_flag=True,
              help="Start without our schemas: a registry whose ids are its own, like an external one "
                   "(push ours with 'playlog schemas register').")
def registry_command(host: str, port: int | None, store_path: Path | None, empty: bool) -> None:
    """Serve the Confluent Schema Registry REST API for our schemas until Ctrl-C.

    Stock deserializers (confluent-kafka's AvroDeserializer + SchemaRegistryClient, Java's
    KafkaAvroDeserializer, ClickHouse's format_avro_schema_registry_url) decode our topics with this
    URL. Subjects follow TopicRecordNameStrategy: <topic>-<record full name>, e.g.
    playlog.listening-playlog.events.PlayStarted. Reads are open; registering
    (POST /subjects/S/versions) needs an operator token: 'playlog token operator --scope schemas:write'.
    Also serves the topics' AsyncAPI document at /asyncapi.json. Beyond loopback it refuses to start
    while PLAYLOG_TOKEN_SECRET has its built-in development value.
    """
    from aiohttp import web

    from core.settings import load, require_secrets
    from playback.auth import key_ring
    from registry.server import build_app
    from registry.store import SchemaStore
    from schemas.registry import Registry
    from topics.asyncapi import document, project_version

    try:
        settings = load()
    except ValueError as exc:
        raise PlaylogError(str(exc)) from None
    port = settings.registry_port if port is None else port
    require_secrets(settings, host, REGISTRY_SECRETS, "playlog registry")
    path = store_path or settings.data_dir / "registry" / ("store-empty.json" if empty else "store.json")
    store = SchemaStore.open(Registry.load(), settings.topic_prefix, path, empty=empty)
    url = f"http://{host}:{port}"
    doc = document(Registry.load(), settings.topic_prefix, bootstrap=settings.bootstrap_servers, registry_url=url,
                   version=project_version())
    click.echo(f"schema registry on {url} ({len(store.subjects())} subjects, ids up to {store.max_id}, "
               f"TopicRecordNameStrategy, store {path}); AsyncAPI at {url}/asyncapi.json; Ctrl-C to stop", err=True)
    try:
        web.run_app(build_app(store, key_ring(settings), doc), host=host, port=port, print=None,
                    access_log=None)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise PlaylogError(f"cannot listen on {host}:{port}: {exc.strerror} "
                               "(set PLAYLOG_REGISTRY_PORT or --port)") from None
        raise


schemas_group = click.Group(
    "schemas",
    help=(local_schemas.help or "") + "\n\nWith PLAYLOG_SCHEMA_REGISTRY_URL set, 'register' also pushes every "
         "version to that registry.",
    commands={name: cmd for name, cmd in local_schemas.commands.items() if name != "register"},
)


@schemas_group.command("register")
@click.pass_context
def schemas_register(ctx: click.Context) -> None:
    """Give every changed (and compatible) schema a new version with a new stable id; with
    PLAYLOG_SCHEMA_REGISTRY_URL set, then register every version there (subjects by
    TopicRecordNameStrategy; credentials in the URL, e.g. http://operator:TOKEN@host:8702)."""
    from core.settings import load
    from schemas.registry import Registry
    from topics.schema_registry import push, redact

    ctx.invoke(local_schemas.commands["register"])
    settings = load()
    if not settings.schema_registry_url:
        return
    pushed = push(settings, Registry.load())
    for p in pushed:
        click.echo(f"{redact(settings.schema_registry_url)}: {p.subject} version {p.version} has id {p.id}")
    click.echo(f"{len(pushed)} schema version(s) registered at {redact(settings.schema_registry_url)}")
