"""``playlog demo``: the whole system on the embedded default, end to end, then a summary.

Order: local Kafka broker (free ports if the configured ones are busy) -> topics -> synthetic
catalog (metadata for ``--tracks`` tracks, real encoded audio for ``--audio-tracks``) -> users,
devices and royalty pools -> worker, CDN and API subprocesses -> simulated listeners for
``--seconds`` -> wait until the worker has caught up -> summary (stdout, ``--json-summary``) and an
HTML report -> everything stopped, also on Ctrl-C or SIGTERM.

The demo keeps its own state under ``PLAYLOG_DATA_DIR/demo/``: the broker's logs and the worker's
state are wiped at every start (each run is a fresh system, so the statement is this run's), the
rendered masters and the audio store are kept (the ingest recognizes the same master bytes and
does not encode them again).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import click

from core.errors import PlaylogError
from core.settings import Settings, load
from demo.figures import periods_between, pool_events, print_summary, royalty_figures
from demo.probes import LagSampler, api_figures, cdn_figures, range_fetch, view_counts
from devstack.stack import Stack, StackOptions, with_ports
from devstack.supervisor import free_port, port_open, sigterm_as_interrupt

log = logging.getLogger(__name__)

KEEP = ("audio", "masters", "ingest")  # kept between runs: encoding is the slow part


# ==================================================================================================
# ports


def pick_ports(settings: Settings, say: Callable[[str], None]) -> Settings:
    """The configured ports, or free ones (said on the console) where something already listens:
    the demo always runs its own fresh broker, so it never joins another one."""
    host, _, port = settings.bootstrap_servers.split(",")[0].rpartition(":")
    if host not in ("127.0.0.1", "localhost", ""):
        raise PlaylogError(f"the demo runs its own broker on loopback; PLAYLOG_BOOTSTRAP_SERVERS is {settings.bootstrap_servers}")
    changes: dict = {}
    if port_open("127.0.0.1", int(port)):
        changes["bootstrap_servers"] = f"127.0.0.1:{free_port()}"
        say(f"port {port} is busy (another broker?): the demo's broker uses {changes['bootstrap_servers']}")
    for field_name, what in (("controller_port", "the broker's controller"), ("cdn_port", "the CDN"),
                             ("api_port", "the API"), ("registry_port", "the schema registry")):
        busy = getattr(settings, field_name)
        if port_open("127.0.0.1", busy):
            changes[field_name] = free_port()
            say(f"port {busy} is busy: {what} uses {changes[field_name]}")
    out = with_ports(settings, **changes)
    return replace(out, cdn_base_url=f"http://127.0.0.1:{out.cdn_port}", worker_urls=())


# ==================================================================================================
# data


def reset_state(demo_dir: Path) -> None:
    """Remove the previous run's broker and worker state; keep masters and the audio store."""
    if not demo_dir.exists():
        return
    for child in demo_dir.iterdir():
        if child.name in KEEP:
            continue
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


# ==================================================================================================
# the demo


@dataclass
class DemoOptions:
    seconds: float = 60.0
    listeners: int = 300
    speed: float = 30.0
    tracks: int = 200
    audio_tracks: int = 4
    audio_seconds: float = 40.0
    seed: int = 7
    via_api: bool = True
    json_summary: Path | None = None


class Demo:
    def __init__(self, settings: Settings, opts: DemoOptions, say=click.echo):
        self.opts = opts
        self.say = say
        self.base_dir = Path(settings.data_dir).resolve()
        self.demo_dir = self.base_dir / "demo"
        self.settings = replace(settings, data_dir=self.demo_dir)
        self.stack = Stack(self.settings, StackOptions(workers=1, broker="local"), say=say)
        self.timeline: list[dict] = []  # samples over the run (events/s, lag, cdn)
        self.figures: dict = {}
        self.api_url: str | None = None

    # -- phases ----------------------------------------------------------------------------------
    def start_broker(self) -> None:
        self.settings = pick_ports(self.settings, self.say)
        self.stack = Stack(self.settings, StackOptions(workers=1, broker="local"), say=self.say)
        self.stack.start_broker()
        self.figures["broker_ready_s"] = round(self.stack.timings["broker_ready_s"], 2)

    def load_catalog(self) -> None:
        from ingest.synthetic import SyntheticCatalog, ingest_audio
        from topics.producer import KafkaEventSink

        o = self.opts
        cat = SyntheticCatalog(o.tracks, o.seed, audio_tracks=o.audio_tracks, audio_seconds=o.audio_seconds)
        sink = KafkaEventSink(self.settings)
        t0 = time.monotonic()
        for ev in cat.events():
            sink.emit(ev)
        sink.close()
        n_meta = sink.count
        self.say(f"catalog: {n_meta} events for {o.tracks} tracks ({time.monotonic() - t0:.1f}s); "
                 f"encoding {len(cat.audio)} masters of {o.audio_seconds:.0f}s into the ladder ...")
        t1 = time.monotonic()
        sink = KafkaEventSink(self.settings)
        report = ingest_audio(cat, self.demo_dir, sink, progress=False)
        sink.close()
        if report.failed:
            raise PlaylogError(f"ingest failed: {report.failed[0].path.name}: {report.failed[0].error}")
        self.audio = {r.track_id: r.file_ids for r in report.results if r.track_id}
        self.catalog = cat
        self.say(f"  {len(self.audio)} tracks with audio, {report.renditions_encoded} renditions encoded "
                 f"(others reused from the store) in {time.monotonic() - t1:.1f}s")
        self.figures["catalog"] = {"tracks": o.tracks, "catalog_events": n_meta, "audio_tracks": len(self.audio),
                                   "renditions_encoded": report.renditions_encoded,
                                   "ingest_s": round(time.monotonic() - t1, 2)}

    def register_users(self) -> None:
        from demo import model
        from topics.producer import KafkaEventSink

        self.population = model.make_population(
            self.opts.listeners, self.opts.seed, genres=self._genres(),
            artists=sorted({x for a in self.catalog.audio for x in a.track.get("artist_ids", [])}))
        sink = KafkaEventSink(self.settings)
        now = int(time.time() * 1000)
        for ev in model.registration_events(self.population, now - 86_400_000):
            sink.emit(ev)
        sink.close()
        self.say(f"users: {len(self.population)} registered with a device each")

    def _genres(self) -> list[str]:
        out: list[str] = []
        for a in self.catalog.audio:
            for g in a.track.get("genres", []):
                if g not in out:
                    out.append(g)
        return out or ["pop"]

    def start_services(self) -> None:
        self.stack.start_workers()
        self.stack.record()
        self.worker = self.stack.workers[0]
        self.stack.start_cdn()

    def declare_pools(self, start_ms: int, end_ms: int) -> dict[tuple[str, str, str], int]:
        from topics.producer import KafkaEventSink

        periods = periods_between(start_ms, end_ms)
        countries = sorted({u.country for u in self.population})
        events = pool_events(periods, countries, start_ms)
        sink = KafkaEventSink(self.settings)
        for ev in events:
            sink.emit(ev)
        sink.close()
        return {(e["period"], e["country"], e["product"]): e["amount_micros"] for e in events}

    def tracks_and_renditions(self) -> tuple[list, dict[str, list[dict]]]:
        from demo.model import TrackInfo
        from ingest.store import AudioStore

        store = AudioStore.from_data_dir(self.demo_dir)
        tracks, renditions = [], {}
        meta = {a.track["track_id"]: a.track for a in self.catalog.audio}
        for track_id, files in self.audio.items():
            rs = []
            for fid in files.values():
                m = store.rendition_manifest(fid)
                rs.append({"file_id": fid, "bitrate_kbps": m["bitrate_kbps"], "segment_ms": m["segment_ms"],
                           "segment_count": m["segment_count"], "byte_size": m["byte_size"],
                           "duration_ms": m["duration_ms"]})
            renditions[track_id] = rs
            t = meta.get(track_id, {})
            tracks.append(TrackInfo(track_id, min(r["duration_ms"] for r in rs), tuple(t.get("genres", ())),
                                    tuple(t.get("artist_ids", ()))))
        return tracks, renditions

    def start_api(self) -> None:
        self.stack.start_api()
        self.api_url = f"http://127.0.0.1:{self.settings.api_port}"
        self.wait_api_views()
        self.say(f"API on {self.api_url} (replica caught up: {len(self.population)} users, {len(self.audio)} tracks with audio)")

    def wait_api_views(self, timeout: float = 120.0) -> None:
        """Until the API's read replica knows every listener and the ladder of every audio track."""
        from playback import auth

        deadline = time.monotonic() + timeout
        u = self.population[-1]
        token = auth.issue_token(u.user_id, auth.key_ring(self.settings), now=time.time(), ttl=600)
        want = set(self.audio)
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.api_url}/healthz", timeout=5) as r:  # noqa: S310 (loopback)
                    stats = json.loads(r.read())
                if stats.get("users", 0) >= len(self.population):
                    ready = set()
                    for t in want:
                        req = urllib.request.Request(f"{self.api_url}/v1/tracks/{t}",  # noqa: S310
                                                     headers={"Authorization": f"Bearer {token}"})
                        with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310
                            if json.loads(r.read()).get("has_audio"):
                                ready.add(t)
                    if ready == want:
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        raise PlaylogError(f"the API's views did not catch up within {timeout:.0f}s; see {self.demo_dir / 'logs'}")

    def simulate(self) -> dict:
        import asyncio

        from demo import clients, simulator

        o = self.opts
        tracks, renditions = self.tracks_and_renditions()
        settings = self.settings
        if self.api_url:
            by_id = {t.track_id: t for t in tracks}

            def make(session, stats):
                return clients.ApiClient(settings, session, self.api_url, stats, by_id)
        else:
            def make(session, stats):
                return clients.DirectClient(settings, session, renditions, stats)
        terms = sorted({w for a in self.catalog.audio for w in a.track["title"].lower().split()})
        sampler = LagSampler(self.settings, self.timeline, cdn_url=settings.cdn_base_url)
        sampler.start()
        try:
            return asyncio.run(simulator.run(self.population, make, tracks, seconds=o.seconds, speed=o.speed,
                                             seed=o.seed, on_tick=sampler.note_events, search_terms=terms))
        finally:
            sampler.stop()

    def drain(self) -> dict:
        from devstack.workers import owner, source_lag, wait_caught_up

        t0 = time.monotonic()
        wait_caught_up(self.settings, self.stack.workers, timeout=180)
        drain = time.monotonic() - t0
        self.owner = owner(self.stack.workers)
        return {"drain_s": round(drain, 2), "final_lag": sum(source_lag(self.settings).values())}

    # -- the whole run ---------------------------------------------------------------------------
    def run(self) -> dict:
        wall0 = time.monotonic()
        reset_state(self.demo_dir)
        self.demo_dir.mkdir(parents=True, exist_ok=True)
        self.start_broker()
        self.load_catalog()
        self.register_users()
        self.start_services()
        if self.opts.via_api:
            self.start_api()
        from devstack.workers import wait_caught_up

        wait_caught_up(self.settings, self.stack.workers, timeout=180)  # so the lag measured is the load's
        self.say(f"simulating {len(self.population)} listeners for {self.opts.seconds:.0f}s at {self.opts.speed:g}x ...")
        sim = self.simulate()
        pools = self.declare_pools(sim["sim_start_ms"], sim["sim_end_ms"])
        self.say("waiting for the worker to catch up ...")
        lag = self.drain()
        statements = {p: self.owner.statement(p) for p in periods_between(sim["sim_start_ms"], sim["sim_end_ms"])}
        royalties = royalty_figures(statements, pools)
        ranged = range_fetch(self.settings, next(iter(next(iter(self.audio.values())).values())))
        cdn = cdn_figures(self.settings.cdn_base_url)
        views = view_counts(self.settings)
        api = api_figures(self.api_url) if self.api_url else {}
        summary = {
            "data_dir": str(self.demo_dir),
            "seconds": self.opts.seconds,
            "speed": self.opts.speed,
            "listeners": len(self.population),
            "via": "api" if self.api_url else "direct",
            "ports": {"broker": self.settings.broker_port, "controller": self.settings.controller_port,
                      "cdn": self.settings.cdn_port, "api": self.settings.api_port if self.api_url else None},
            "pids": self.stack.pids(),
            **self.figures,
            "simulation": {k: v for k, v in sim.items() if k != "per_track"},
            "plays_by_track": sim.get("per_track", {}),
            "lag": {**lag, "max_records": max((s.get("lag", 0) for s in self.timeline), default=0)},
            "views": views,
            "royalties": royalties,
            "range_fetch": ranged,
            "cdn": cdn,
            "api": api,
            "timeline": self.timeline,
        }
        for period, text in statements.items():
            (self.demo_dir / f"statement-{period}.csv").write_text(text)
        summary["wall_s"] = round(time.monotonic() - wall0, 1)
        return summary


@click.command("demo")
@click.option("--seconds", type=click.FloatRange(1, 3600), default=60.0, show_default=True,
              help="How long the simulated listeners run (wall-clock seconds).")
@click.option("--listeners", type=click.IntRange(1, 100_000), default=300, show_default=True,
              help="Simulated listeners (users with taste, country and tier).")
@click.option("--speed", type=click.FloatRange(1, 600), default=30.0, show_default=True,
              help="Time compression: simulated seconds per wall-clock second.")
@click.option("--tracks", type=click.IntRange(1, 1_000_000), default=200, show_default=True,
              help="Tracks in the synthetic catalog.")
@click.option("--audio-tracks", type=click.IntRange(1, 50), default=4, show_default=True,
              help="Tracks given real encoded audio (the ones listeners can stream).")
@click.option("--audio-seconds", type=click.FloatRange(31, 600), default=40.0, show_default=True,
              help="Length of each synthesized master (over 30 s, so plays can count as streams).")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of catalog and listeners.")
@click.option("--direct", is_flag=True,
              help="Listeners skip the API: manifests signed locally, events produced straight to Kafka.")
@click.option("--json-summary", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the summary as JSON to this file.")
def demo_command(seconds: float, listeners: int, speed: float, tracks: int, audio_tracks: int,
                 audio_seconds: float, seed: int, direct: bool, json_summary: Path | None) -> None:
    """Run the whole system locally and simulate listeners, then print a summary.

    Starts a local Kafka broker (free ports if the configured ones are busy), creates the topics,
    ingests a synthetic catalog with real encoded audio, registers users and royalty pools, runs a
    worker, the CDN and the API, simulates listeners, then prints events/s, lag, plays and
    streams, the royalty statement against its pools, a signed segment fetched with a Range request
    and the CDN's figures, writes an HTML report, and stops everything (Ctrl-C too).
    State lives under PLAYLOG_DATA_DIR/demo (broker and worker state are fresh each run).
    """
    try:
        settings = load()
    except ValueError as exc:
        raise PlaylogError(str(exc)) from None
    opts = DemoOptions(seconds=seconds, listeners=listeners, speed=speed, tracks=tracks,
                       audio_tracks=min(audio_tracks, tracks), audio_seconds=audio_seconds, seed=seed,
                       via_api=not direct, json_summary=json_summary)
    demo = Demo(settings, opts)
    summary: dict | None = None
    interrupted = False
    with sigterm_as_interrupt():
        try:
            summary = demo.run()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            click.echo("stopping everything ...", err=True)
            try:
                demo.stack.stop()
            except KeyboardInterrupt:  # a second Ctrl-C: stop anyway
                demo.stack.stop()
    if interrupted:
        raise PlaylogError("interrupted; every process the demo started has been stopped")
    assert summary is not None
    try:
        from demo.report import write_report

        summary["report"] = str(write_report(summary, demo.demo_dir / "report.html"))
    except ImportError:
        summary["report"] = None
    print_summary(summary)
    if json_summary is not None:
        json_summary.parent.mkdir(parents=True, exist_ok=True)
        json_summary.write_text(json.dumps(summary, indent=2, default=str))
        click.echo(f"summary (JSON)    {json_summary}")
