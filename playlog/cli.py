"""The ``playlog`` command. Each verb lives beside the part it drives and is imported lazily,
so ``playlog --help`` stays fast and a verb only loads what it needs."""

from __future__ import annotations

import importlib
import logging
import sys

import click

from core.errors import PlaylogError
from playlog import __version__

# verb -> "module:attribute" of a click command or group
VERBS: dict[str, str] = {
    "broker": "devstack.kafka:broker_command",
    "topics": "topics.cli:topics_group",
    "produce": "topics.cli:produce_command",
    "consume": "topics.cli:consume_command",
    "schemas": "registry.cli:schemas_group",
    "registry": "registry.cli:registry_command",
    "worker": "worker.cli:worker_command",
    "royalties": "worker.cli:royalties_command",
    "replay": "replay.cli:replay_group",
    "sink": "sinks.cli:sink_group",
    "restore": "sinks.restore:restore_command",
    "batch": "batch.cli:batch_group",
    "api": "playback.cli:api_command",
    "cdn": "playback.cli:cdn_command",
    "token": "playback.cli:token_command",
    "oauth": "playback.cli:oauth_group",
    "subsonic": "playback.subsonic.cli:subsonic_group",
    "ingest": "ingest.cli:ingest_command",
    "rights": "ingest.cli:rights_group",
    "takedown": "ingest.cli:takedown_command",
    "catalog": "ingest.cli:catalog_group",
    "up": "playlog.up:up_command",
    "demo": "demo.run:demo_command",
    "bench": "benchmarks.cli:bench_group",
    "gdpr": "playback.gdpr_export:gdpr_group",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args, lazy: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, _, attr = self.lazy[name].partition(":")
            try:
                return getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                return _unavailable(name, exc)
        return super().get_command(ctx, name)


def _unavailable(name: str, exc: Exception) -> click.Command:
    """A stand-in for a verb whose module cannot load (missing optional extra, say)."""

    def run() -> None:
        raise PlaylogError(f"'playlog {name}' is unavailable here: {exc} (install the project's extras: make setup)")

    return click.Command(name, callback=run, help=f"(unavailable: {exc})")


@click.group(cls=LazyGroup, lazy=VERBS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="playlog")
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def cli(verbose: bool) -> None:
    """playlog: every action an Avro event on Kafka, every view rebuilt from the log."""
    from core.settings import load
    from topics.schema_registry import configure

    settings = load()
    level = "DEBUG" if verbose else settings.log_level
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    configure(settings)  # PLAYLOG_SCHEMA_REGISTRY_URL: this process writes and reads that registry's ids


def _exit_status(rv: object) -> int:
    """The process exit status for what a command returned: an int is the status (click returns a
    ``click.exceptions.Exit``'s code this way too); anything else (None, data) is success."""
    if isinstance(rv, int) and not isinstance(rv, bool):
        return rv
    return 0


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback.

    With ``standalone_mode=False`` click hands back, instead of exiting, the value the command
    returned or the code of a ``click.exceptions.Exit`` it raised (``--help``, ``ctx.exit(n)``);
    that value becomes the process exit status. ``SystemExit`` passes through unchanged.
    """
    try:
        rv = cli.main(args=argv, prog_name="playlog", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            click.echo(f"(see '{exc.ctx.command_path} --help')", err=True)
        sys.exit(exc.exit_code)
    except PlaylogError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except ValueError as exc:  # configuration errors from PLAYLOG_* parsing
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(_exit_status(rv))


if __name__ == "__main__":
    main()
