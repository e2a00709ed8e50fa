"""``playlog up``: the whole stack in the foreground until Ctrl-C / SIGTERM."""

from __future__ import annotations

import click

from core.errors import PlaylogError
from devstack.stack import SINKS


def _sinks(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    kinds = tuple(k.strip() for k in value.split(",") if k.strip())
    unknown = [k for k in kinds if k not in SINKS]
    if unknown:
        raise click.BadParameter(f"unknown sink(s) {', '.join(unknown)}; choose from {', '.join(SINKS)}")
    return kinds


@click.command("up")
@click.option("--workers", type=click.IntRange(0, 16), default=1, show_default=True,
              help="Stream-processing workers (each its own name w1.., web port and state dir).")
@click.option("--brokers", type=click.IntRange(1, 5), default=1, show_default=True,
              help="Nodes of the local Kafka cluster to start (3: replication 3, min.insync.replicas 2).")
@click.option("--no-broker", is_flag=True,
              help="Never start a local broker: PLAYLOG_BOOTSTRAP_SERVERS must name a cluster that answers.")
@click.option("--sinks", "sinks", default="", metavar="duckdb,parquet,clickhouse",
              help="Sinks to run, comma separated.")
@click.option("--no-api", is_flag=True, help="Do not start the playback API.")
@click.option("--no-cdn", is_flag=True, help="Do not start the CDN.")
@click.option("--no-registry", is_flag=True, help="Do not start the schema registry (playlog registry).")
def up_command(workers: int, brokers: int, no_broker: bool, sinks: str, no_api: bool, no_cdn: bool,
               no_registry: bool) -> None:
    """Run the whole stack in the foreground: broker, topics, schema registry, workers, CDN, API, optional sinks.

    The broker is started on loopback where PLAYLOG_BOOTSTRAP_SERVERS and
    PLAYLOG_KAFKA_CONTROLLER_PORT say (data under PLAYLOG_DATA_DIR/kafka), unless a cluster already
    answers there or --no-broker is given. With --brokers 3 it is a 3-node KRaft cluster (node N on
    those ports + 2(N-1), data under kafka/node-N) and topics are replicated 3 times with
    min.insync.replicas 2. The schema registry listens on PLAYLOG_REGISTRY_PORT (not started when
    PLAYLOG_SCHEMA_REGISTRY_URL names an external one). Prints where each part listens and when it is ready; endpoints are
    recorded in PLAYLOG_DATA_DIR/up/stack.json, where 'playlog royalties' finds the workers.
    Ctrl-C or SIGTERM stops every child. Exit status: 0 stopped on request, 1 a child died (named
    on stderr), 2 bad configuration or a part that could not start.
    """
    from core.settings import load
    from devstack.stack import Stack, StackOptions
    from devstack.supervisor import ChildDied, sigterm_as_interrupt

    try:
        settings = load()
    except ValueError as exc:
        raise PlaylogError(str(exc)) from None
    if no_broker and brokers != 1:
        raise click.UsageError("--brokers sizes the local cluster; it cannot go with --no-broker")
    opts = StackOptions(workers=workers, brokers=brokers, broker="none" if no_broker else "auto",
                        sinks=_sinks(sinks), api=not no_api, cdn=not no_cdn, registry=not no_registry)

    def say(msg: str) -> None:
        click.echo(msg, err=True)

    stack = Stack(settings, opts, say=say)
    with sigterm_as_interrupt():
        try:
            stack.start()
            say(f"stack ready (endpoints in {settings.data_dir / 'up' / 'stack.json'}); Ctrl-C stops it")
            stack.watch()
        except KeyboardInterrupt:
            say("stopping the stack ...")
        except ChildDied as exc:
            say(f"error: {exc}")
            say("stopping the stack ...")
            stack.stop()
            raise SystemExit(1) from None
        finally:
            stack.stop()
    say("stopped")
