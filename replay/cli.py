"""``playlog replay``: recompute views from the log, for audits (spec/api.md).

``playlog replay royalties --period YYYY-MM --source kafka|DIR|FILE.jsonl --out FILE.csv``
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import click

from core.errors import PlaylogError
from core.timefmt import parse_ts
from processors.statement import StatementLine, sort_lines, to_csv

log = logging.getLogger(__name__)

_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

EXIT_DIFF = 1
EXIT_BAD_INPUT = 3


@click.group("replay")
def replay_group() -> None:
    """Recompute views from the event log (a .jsonl file, the Parquet archive or the topics)."""


def _period(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not _PERIOD.match(value):
        raise PlaylogError(f"--period {value!r} is not a YYYY-MM month (e.g. 2026-05)")
    return value


def _instant(option: str, value: str | None) -> int | None:
    """YYYY-MM-DD (UTC midnight) or an RFC 3339 timestamp -> epoch ms."""
    if value is None:
        return None
    text = f"{value}T00:00:00Z" if _DATE.match(value) else value
    try:
        return parse_ts(text)
    except ValueError:
        raise PlaylogError(f"{option} {value!r} is not a YYYY-MM-DD date or an RFC 3339 timestamp") from None


@replay_group.command("royalties")
@click.option("--period", required=True, callback=_period, help="Statement month, YYYY-MM.")
@click.option(
    "--source",
    required=True,
    help="'kafka' (the topics, from the beginning to their current end), a directory of the Parquet "
    "archive (topic=*/date=*/*.parquet) or a .jsonl file of events.",
)
@click.option(
    "--engine",
    type=click.Choice(["fold", "sql"]),
    default="fold",
    show_default=True,
    help="fold: the live view's own fold functions; sql: the DuckDB engine (files only).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Statement file: CSV (royalties.md), Parquet if the name ends with .parquet, '-' = CSV on stdout.",
)
@click.option(
    "--diff-live",
    is_flag=True,
    help="Compare with the live royalty view; print differing lines, exit 1 if any.",
)
@click.option(
    "--from", "from_", metavar="DATE|TS", help="Only read events with occurred_at >= this (fold engine)."
)
@click.option("--to", "to", metavar="DATE|TS", help="Only read events with occurred_at < this (fold engine).")
@click.option(
    "--allow-bad", is_flag=True, help="Exit 0 even if the source had bad input (it is still listed)."
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr (default: when stderr is a terminal).",
)
def royalties_command(
    period: str,
    source: str,
    engine: str,
    out: str,
    diff_live: bool,
    from_: str | None,
    to: str | None,
    allow_bad: bool,
    progress: bool | None,
) -> None:
    """Recompute the royalty statement of PERIOD exactly (spec/royalties.md).

    Input that cannot be used (a malformed line, an invalid event, an undecodable record) is listed
    on stderr with where it was and why. The statement is still computed from the good events and
    written, but the exit status is then 3 unless --allow-bad is given.

    \b
    Exit status: 0 done; 1 --diff-live found differences; 2 usage or input error (nothing written);
    3 bad input was listed (statement written from the good events). 1 wins over 3.
    """
    lo, hi = _instant("--from", from_), _instant("--to", to)
    if lo is not None and hi is not None and hi <= lo:
        raise PlaylogError("--to must be after --from")

    if diff_live and out == "-":
        raise PlaylogError("--diff-live prints the differences on stdout: give --out a file")
    fetch_live = _live_fetcher() if diff_live else None
    bad_count = 0
    if engine == "sql":
        lines, bad_count = _sql(source, period, lo, hi)
    else:
        lines, bad_count = _fold(source, period, lo, hi, progress)

    _write(lines, out)
    log.info("replay royalties %s: %d statement lines written to %s", period, len(lines), out)

    status = 0
    if fetch_live is not None and _diff_live(fetch_live, period, lines):
        status = EXIT_DIFF
    elif bad_count and not allow_bad:
        status = EXIT_BAD_INPUT
    if status:
        raise click.exceptions.Exit(status)


def _fold(
    source: str, period: str, lo: int | None, hi: int | None, progress: bool | None
) -> tuple[list[StatementLine], int]:
    from replay.fold_engine import ROYALTY_TYPES, compute
    from replay.sources import SourceReport, open_source

    report = SourceReport()
    events = open_source(source, report, ROYALTY_TYPES, progress=progress)
    if lo is not None or hi is not None:
        lo_ms = lo if lo is not None else -(2**63)
        hi_ms = hi if hi is not None else 2**63
        events = (e for e in events if lo_ms <= e["occurred_at"] < hi_ms)
    lines = compute(events, period)
    for bad in report.bad:
        click.echo(f"bad input: {bad.where}: {bad.reason}", err=True)
    if report.bad:
        click.echo(f"{len(report.bad)} bad input item(s) excluded; {report.events} events used", err=True)
    log.info(
        "read %d events (%d of other types passed over, %d bad)",
        report.events,
        report.ignored,
        len(report.bad),
    )
    return lines, len(report.bad)


def _sql(source: str, period: str, lo: int | None, hi: int | None) -> tuple[list[StatementLine], int]:
    """The sql engine (replay/sql_engine.py, DuckDB) on a file source; rejected lines are listed."""
    from replay.sources import describe_kind

    if describe_kind(source) == "kafka":
        raise PlaylogError("the sql engine reads files: give --source a .jsonl file or an archive directory")
    if lo is not None or hi is not None:
        raise PlaylogError("--from/--to are only supported by the fold engine")
    try:
        engine = importlib.import_module("replay.sql_engine")
        compute_from_path = engine.compute_from_path
    except (ImportError, AttributeError) as exc:
        raise PlaylogError(f"sql engine unavailable: {exc}") from None
    try:
        if hasattr(engine, "compute"):  # the richer entry point also returns the rejected lines
            result = engine.compute(Path(source), period)
            lines, rejected = list(result.lines), list(getattr(result, "rejected", []))
        else:
            lines, rejected = list(compute_from_path(Path(source), period)), []
    except ValueError as exc:  # the engine's own errors (SqlEngineError) are one-line messages
        raise PlaylogError(f"sql engine: {exc}") from None
    for lineno, reason in rejected:
        click.echo(f"bad input: line {lineno}: {reason}", err=True)
    if rejected:
        click.echo(f"{len(rejected)} bad input item(s) excluded", err=True)
    return lines, len(rejected)


def _write(lines: list[StatementLine], out: str) -> None:
    if out == "-":
        click.echo(to_csv(lines), nl=False)
        return
    path = Path(out)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".parquet":
            _write_parquet(lines, tmp)
        else:
            tmp.write_bytes(to_csv(lines).encode("utf-8"))
        os.replace(tmp, path)
    except OSError as exc:
        raise PlaylogError(f"cannot write {out}: {exc.strerror or exc}") from None


def _write_parquet(lines: list[StatementLine], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [r for r in sort_lines(lines) if r.streams > 0]
    string_cols = ("period", "country", "product", "rightsholder_id", "track_id")
    arrays = [pa.array([getattr(r, c) for r in rows], type=pa.string()) for c in string_cols]
    arrays += [pa.array([getattr(r, c) for r in rows], type=pa.int64()) for c in ("streams", "amount_micros")]
    pq.write_table(pa.Table.from_arrays(arrays, names=list(StatementLine._fields)), path)


def _live_fetcher() -> Callable[..., Iterable[StatementLine]]:
    """``worker.client.fetch_statement(settings, period)``, resolved before any work is done."""
    try:
        return importlib.import_module("worker.client").fetch_statement
    except (ImportError, AttributeError) as exc:
        raise PlaylogError(f"live royalty view unavailable for --diff-live: {exc}") from None


def _diff_live(
    fetch_statement: Callable[..., Iterable[StatementLine]], period: str, lines: list[StatementLine]
) -> bool:
    """Print '-' lines only in the live statement and '+' lines only in the replay; True if any."""
    from core.settings import load

    live = {r for r in fetch_statement(load(), period) if r.streams > 0}
    mine = {r for r in lines if r.streams > 0}
    only_live, only_replay = live - mine, mine - live
    for sign, rows in (("-", only_live), ("+", only_replay)):
        for r in sort_lines(rows):
            click.echo(f"{sign}{','.join(str(x) for x in r)}")
    if only_live or only_replay:
        click.echo(f"{len(only_live)} line(s) only live, {len(only_replay)} only in the replay", err=True)
        return True
    click.echo("replay matches the live statement", err=True)
    return False
