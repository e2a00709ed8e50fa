"""``playlog topics``, ``playlog produce`` and ``playlog consume``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson

from core.errors import PlaylogError
from core.settings import load
from topics.topic_catalog import load_catalog


@click.group("topics")
def topics_group() -> None:
    """The topic catalog against the configured cluster (PLAYLOG_BOOTSTRAP_SERVERS)."""


@topics_group.command("create")
@click.option("--replication", type=click.IntRange(min=1), default=None,
              help="Replication factor for new topics [default: the brokers' default.replication.factor, "
                   "else the number of live brokers, at most 3].")
def topics_create(replication: int | None) -> None:
    """Create every topic of the catalog that is missing (idempotent), and set every topic's retention
    (cleanup.policy, retention.ms, delete.retention.ms) to the catalog's where the cluster differs."""
    from topics.admin import apply_retention, create_topics

    settings = load()
    created = create_topics(settings, replication=replication)
    total = len(load_catalog())
    click.echo(f"{len(created)} topic(s) created, {total - len(created)} already present")
    for name in created:
        click.echo(f"  + {name}")
    for change in apply_retention(settings):
        click.echo(f"  ~ {change}")


@topics_group.command("list")
def topics_list() -> None:
    """List the catalog's topics and whether they exist."""
    from topics.admin import describe_topics

    for st in describe_topics(load()):
        click.echo(f"{st.name:32} {'ok' if st.exists else 'missing'}")


@topics_group.command("describe")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def topics_describe(as_json: bool) -> None:
    """Partitions, key, cleanup policy, retention and event types of each topic, with drift from the cluster."""
    from topics.admin import describe_topics

    rows = []
    for st in describe_topics(load()):
        t = st.spec
        rows.append({
            "topic": st.name, "exists": st.exists, "partitions": t.partitions, "key": t.key,
            "cleanup_policy": t.cleanup_policy, "retention_ms": t.retention_ms,
            "event_types": list(t.event_types), "drift": st.drift, "doc": t.doc,
        })
    if as_json:
        click.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    for r in rows:
        drift = "; ".join(r["drift"]) or "in sync"
        click.echo(f"{r['topic']}  partitions={r['partitions']} key={r['key']} cleanup={r['cleanup_policy']} "
                   f"retention_ms={r['retention_ms']}  [{drift}]")
        if r["event_types"]:
            click.echo(f"    events: {', '.join(r['event_types'])}")


@topics_group.command("doc")
@click.option("--out", type=click.Path(dir_okay=False, allow_dash=True), default="-", show_default=True,
              help="Where to write the document ('-': standard output).")
def topics_doc(out: str) -> None:
    """Write the AsyncAPI 3.0 document of every topic (channels, keys, partitions, retention, cleanup
    policy; one message per event type with its Avro schema). The schema registry serves the same at
    /asyncapi.json."""
    from schemas.registry import Registry
    from topics.asyncapi import document, project_version
    from topics.schema_registry import redact

    settings = load()
    url = settings.schema_registry_url or f"http://127.0.0.1:{settings.registry_port}"
    doc = document(Registry.load(), settings.topic_prefix, bootstrap=settings.bootstrap_servers,
                   registry_url=redact(url), version=project_version())
    text = orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
    if out == "-":
        sys.stdout.buffer.write(text)
        return
    try:
        Path(out).write_bytes(text)
    except OSError as exc:
        raise PlaylogError(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(f"AsyncAPI document of {len(doc['channels'])} topics written to {out}", err=True)


@click.command("produce")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--emit", "emit", type=click.Path(dir_okay=False), default=None,
              help="Write validated events to this JSON Lines file instead of Kafka.")
@click.option("--quiet", is_flag=True, help="Do not list bad lines (still counted).")
def produce_command(file: str, emit: str | None, quiet: bool) -> None:
    """Validate JSON Lines events (spec/events.md), encode to Avro and produce them.

    Bad lines are reported with their line number and reason; the good lines still go out.
    Exit code 0: all lines produced; 1: some lines were bad; 2: nothing could be read or sent.
    """
    from schemas.codec import EventError, default_codec
    from topics.emit import JsonlSink

    codec = default_codec()
    if file != "-" and not Path(file).is_file():
        raise PlaylogError(f"cannot read {file}: no such file")
    if emit:
        try:
            sink = JsonlSink(emit, codec)
        except OSError as exc:
            raise PlaylogError(f"cannot write {emit}: {exc.strerror or exc}") from None
    else:
        from topics.producer import KafkaEventSink

        sink = KafkaEventSink(load(), codec)
    bad = 0
    good = 0
    fh = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    try:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                try:
                    obj = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise EventError(f"bad JSON: {exc}") from None
                event = codec.from_json(obj)
            except EventError as exc:
                bad += 1
                if not quiet:
                    click.echo(f"{file}:{lineno}: {exc.reason}", err=True)
                continue
            sink.emit(event)
            good += 1
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()
    sink.close()
    where = emit if emit else "Kafka"
    click.echo(f"{good} event(s) produced to {where}, {bad} bad line(s)")
    if bad:
        sys.exit(1)


@click.command("consume")
@click.argument("topic")
@click.option("--follow/--no-follow", default=False, help="Keep waiting for new records (Ctrl-C stops).")
@click.option("--limit", type=int, default=None, help="Stop after this many records.")
@click.option("--with-meta", is_flag=True, help="Add _topic, _partition, _offset, _key to each line.")
def consume_command(topic: str, follow: bool, limit: int | None, with_meta: bool) -> None:
    """Print the decoded events of TOPIC (catalog name like 'listening', or a full name) as JSON Lines.

    Records that do not decode are reported on stderr with their position, never skipped silently.
    """
    from schemas.codec import EventError, default_codec
    from topics.consumer import iter_records

    settings = load()
    names = {t.name for t in load_catalog()}
    full = settings.topic_prefix + topic if topic in names else topic
    codec = default_codec()
    out = sys.stdout.buffer
    n = 0
    bad = 0
    try:
        for rec in iter_records(settings, [full], until_end=not follow, idle_timeout=None):
            try:
                obj = codec.to_json(codec.decode(rec.value)) if rec.value is not None else None
            except EventError as exc:
                # derived topics carry JSON; show it as is
                try:
                    obj = orjson.loads(rec.value)
                except orjson.JSONDecodeError:
                    bad += 1
                    click.echo(f"{rec.topic}[{rec.partition}]@{rec.offset}: {exc.reason}", err=True)
                    continue
            if with_meta:
                obj = {"_topic": rec.topic, "_partition": rec.partition, "_offset": rec.offset,
                       "_key": rec.key.decode("utf-8", "replace") if rec.key else None,
                       **(obj if isinstance(obj, dict) else {"value": obj})}
            out.write(orjson.dumps(obj) + b"\n")
            n += 1
            if limit is not None and n >= limit:
                break
    except KeyboardInterrupt:
        pass
    out.flush()
    if bad:
        click.echo(f"{bad} record(s) did not decode", err=True)
        sys.exit(1)
