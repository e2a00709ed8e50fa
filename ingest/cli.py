"""CLI verbs of the catalog side: ``ingest``, ``rights set``, ``takedown``, ``catalog generate``.

Each produces events to Kafka (``topics.producer.KafkaEventSink``), or to a JSON Lines file with
``--emit FILE.jsonl``.
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import click

from core.errors import PlaylogError
from core.timefmt import format_ts, parse_ts
from schemas.codec import EventError, default_codec
from topics.emit import EventSink, JsonlSink


class IngestFailed(PlaylogError):
    """Some masters failed (each was reported); the others were ingested."""

    exit_code = 1


def open_sink(emit: str | None) -> EventSink:
    if emit:
        try:
            return JsonlSink(emit)
        except OSError as exc:
            raise PlaylogError(f"cannot write {emit}: {exc.strerror or exc}") from None
    from core.settings import load

    try:
        from topics.producer import KafkaEventSink
    except ImportError as exc:
        raise PlaylogError(f"the Kafka sink is unavailable ({exc}); write a file instead with --emit FILE.jsonl") from None
    return KafkaEventSink(load())


def _time(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_ts(value)
    except ValueError:
        raise PlaylogError(f"{option} {value!r} is not an RFC 3339 time (e.g. 2026-05-01T00:00:00Z)") from None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _emit_all(events: list[dict], emit: str | None) -> None:
    codec = default_codec()
    checked = []
    for ev in events:  # validate everything before producing anything
        try:
            checked.append(codec.from_json(codec.to_json(ev)))
        except EventError as exc:
            raise PlaylogError(exc.reason) from None
    sink = open_sink(emit)
    try:
        for ev in checked:
            sink.emit(ev)
    finally:
        sink.close()


_emit_option = click.option("--emit", "emit", metavar="FILE.jsonl", help="Write the events to a JSON Lines file instead of Kafka.")
_at_option = click.option("--at", "at", metavar="TIME", help="Event time (RFC 3339); default: now.")


# -- ingest ---------------------------------------------------------------------------------------
@click.command("ingest")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@_emit_option
@_at_option
@click.option("--segment-ms", default=10_000, show_default=True, type=click.IntRange(1000, 600_000),
              help="Segment duration of every rendition.")
@click.option("--jobs", "-j", default=2, show_default=True, type=click.IntRange(1, 64), help="Encoder processes.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def ingest_command(directory: Path, emit: str | None, at: str | None, segment_ms: int, jobs: int,
                   no_progress: bool) -> None:
    """Encode every master in DIRECTORY into the ladder (AAC 96/160/320, Opus 96/160), store the
    segments and emit artist/album/track.ingested and audio.encoded.

    A master NAME.wav may have a sidecar NAME.json with the track.ingested fields (see
    ingest/masters.py). Masters that fail are named with the reason; the others are ingested and
    the exit code is 1.
    """
    from core.settings import load
    from ingest.run import ingest_directory

    if not directory.is_dir():
        raise PlaylogError(f"{directory} is not a directory of masters")
    occurred_at = _time(at, "--at") or _now_ms()
    settings = load()
    sink = open_sink(emit)
    try:
        report = ingest_directory(directory, settings.data_dir, sink, occurred_at=occurred_at,
                                  segment_ms=segment_ms, workers=jobs, progress=not no_progress)
    finally:
        sink.close()
    _print_report(report)
    if not report.results:
        raise PlaylogError(f"no masters in {directory} (audio files such as .wav or .flac)")
    if report.failed:
        raise IngestFailed(f"{len(report.failed)} of {len(report.results)} master(s) failed; see above")


def _print_report(report) -> None:  # noqa: ANN001 - IngestReport, imported lazily
    for r in report.results:
        if r.error:
            click.echo(f"FAILED  {r.path.name}: {r.error}", err=True)
        else:
            note = f" (alias of {r.alias_of})" if r.alias_of else ""
            note += " (audio reused)" if r.reused else ""
            click.echo(f"ok      {r.path.name}: track {r.track_id} isrc {r.isrc} {r.duration_ms / 1000:.1f}s{note}")
    for p in report.skipped:
        click.echo(f"skipped {p.name}: not an audio file", err=True)
    speed = report.audio_seconds_encoded / report.wall_seconds if report.wall_seconds else 0.0
    click.echo(
        f"{len(report.results) - len(report.failed)} ingested, {len(report.failed)} failed, "
        f"{report.renditions_encoded} renditions encoded, {report.events} events, "
        f"{report.wall_seconds:.1f}s ({speed:.1f} rendition-seconds of audio per second)",
        err=True,
    )


# -- rights / takedown ----------------------------------------------------------------------------
@click.group("rights")
def rights_group() -> None:
    """Territory rights of tracks (rights.changed events)."""


@rights_group.command("set")
@click.argument("track_id")
@click.option("--territories", required=True, metavar="CC,CC", help="ISO 3166-1 alpha-2 codes, e.g. DE,FR.")
@click.option("--allow/--block", "allowed", default=None, help="Allow or block the track there.")
@click.option("--from", "valid_from", metavar="TIME", help="Start of the window (RFC 3339); default unbounded.")
@click.option("--to", "valid_to", metavar="TIME", help="End of the window, exclusive (RFC 3339); default unbounded.")
@_emit_option
@_at_option
def rights_set(track_id: str, territories: str, allowed: bool | None, valid_from: str | None,
               valid_to: str | None, emit: str | None, at: str | None) -> None:
    """Emit one rights.changed per territory for TRACK_ID."""
    from ingest.territories import parse_territories

    if allowed is None:
        raise PlaylogError("say --allow or --block")
    if not track_id.strip():
        raise PlaylogError("TRACK_ID must not be empty")
    codes = parse_territories(territories, allow_everywhere=False)
    frm, to = _time(valid_from, "--from"), _time(valid_to, "--to")
    if frm is not None and to is not None and to <= frm:
        raise PlaylogError(f"--to {valid_to} must be after --from {valid_from}")
    occurred_at = _time(at, "--at") or _now_ms()
    events = [
        {"type": "rights.changed", "event_id": str(uuid.uuid4()), "occurred_at": occurred_at, "track_id": track_id,
         "territory": code, "allowed": allowed, "valid_from": frm, "valid_to": to}
        for code in codes
    ]
    _emit_all(events, emit)
    window = f" from {format_ts(frm) if frm is not None else '-inf'} to {format_ts(to) if to is not None else '+inf'}"
    click.echo(f"{track_id}: {'allowed' if allowed else 'blocked'} in {','.join(codes)}{window} "
               f"({len(events)} rights.changed)", err=True)


@click.command("takedown")
@click.argument("track_id")
@click.option("--territories", required=True, metavar="CC,CC|*", help="ISO 3166-1 alpha-2 codes, or * for everywhere.")
@click.option("--reason", required=True, help="Why (kept in the event).")
@_emit_option
@_at_option
def takedown_command(track_id: str, territories: str, reason: str, emit: str | None, at: str | None) -> None:
    """Emit track.taken_down for TRACK_ID in the given territories (* = everywhere)."""
    from ingest.territories import parse_territories

    if not track_id.strip():
        raise PlaylogError("TRACK_ID must not be empty")
    if not reason.strip():
        raise PlaylogError("--reason must not be empty")
    codes = parse_territories(territories, allow_everywhere=True)
    event = {"type": "track.taken_down", "event_id": str(uuid.uuid4()), "occurred_at": _time(at, "--at") or _now_ms(),
             "track_id": track_id, "territories": codes, "reason": reason.strip()}
    _emit_all([event], emit)
    click.echo(f"{track_id}: taken down in {','.join(codes)} ({reason.strip()})", err=True)


# -- synthetic catalog ----------------------------------------------------------------------------
@click.group("catalog")
def catalog_group() -> None:
    """The synthetic catalog for demos and benchmarks."""


@catalog_group.command("generate")
@click.option("--tracks", "-n", required=True, type=click.IntRange(0, 100_000_000), help="Canonical tracks.")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same catalog.")
@click.option("--audio-tracks", default=0, show_default=True, type=click.IntRange(0, 10_000),
              help="How many tracks get real synthesized masters through the real ladder.")
@click.option("--audio-seconds", default=30.0, show_default=True, type=click.FloatRange(1, 600),
              help="Length of each synthesized master.")
@click.option("--start", default="2026-01-01T00:00:00Z", show_default=True, metavar="TIME",
              help="Event time of the first track (RFC 3339).")
@click.option("--jobs", "-j", default=2, show_default=True, type=click.IntRange(1, 64), help="Encoder processes.")
@_emit_option
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def catalog_generate(tracks: int, seed: int, audio_tracks: int, audio_seconds: float, start: str, jobs: int,
                     emit: str | None, no_progress: bool) -> None:
    """Generate a realistic catalog (artists, albums, tracks, splits, rights, aliases, takedowns)."""
    from tqdm import tqdm

    from core.settings import load
    from ingest.synthetic import SyntheticCatalog, ingest_audio

    start_ms = _time(start, "--start")
    catalog = SyntheticCatalog(tracks, seed, start=start_ms, audio_tracks=audio_tracks, audio_seconds=audio_seconds)
    sink = open_sink(emit)
    began = time.perf_counter()
    n = 0
    try:
        with tqdm(total=tracks, unit="track", desc="catalog", file=sys.stderr, disable=no_progress) as bar:
            for ev in catalog.events():
                sink.emit(ev)
                n += 1
                if (n & 0xFFF) == 0:
                    bar.update(catalog.tracks_done - bar.n)
            bar.update(catalog.tracks_done - bar.n)
        elapsed = time.perf_counter() - began
        report = None
        if catalog.audio:
            report = ingest_audio(catalog, load().data_dir, sink, workers=jobs, progress=not no_progress)
    finally:
        sink.close()
    counts = ", ".join(f"{v} {k}" for k, v in sorted(catalog.counts.items()))
    click.echo(f"{tracks} tracks in {elapsed:.1f}s ({tracks / elapsed if elapsed else 0:.0f} tracks/s): {counts}",
               err=True)
    if report is not None:
        _print_report(report)
        if report.failed:
            raise IngestFailed(f"{len(report.failed)} synthesized master(s) failed; see above")
