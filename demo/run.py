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

import contextlib
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import click

from core.errors import PlaylogError
from core.settings import Settings, load

log = logging.getLogger(__name__)

KEEP = ("audio", "masters", "ingest")  # kept between runs: encoding is the slow part
POOL_BASE_MICROS = 1_000_000_000  # 1,000 units of currency per (period, country, product), times a factor


# ==================================================================================================
# processes


def _port_busy(port: int) -> bool:
    from devstack.kafka import port_open

    return port_open("127.0.0.1", port)


def pick_ports(settings: Settings, say) -> Settings:
    """The configured ports, or free ones (said on the console) where something already listens."""
    from devstack.kafka import free_port

    host, _, port = settings.bootstrap_servers.split(",")[0].rpartition(":")
    if host not in ("127.0.0.1", "localhost", ""):
        raise PlaylogError(f"the demo runs its own broker on loopback; PLAYLOG_BOOTSTRAP_SERVERS is {settings.bootstrap_servers}")
    changes: dict = {}
    broker_port = int(port)
    if _port_busy(broker_port):
        changes["bootstrap_servers"] = f"127.0.0.1:{free_port()}"
        say(f"port {broker_port} is busy (another broker?): the demo's broker uses {changes['bootstrap_servers']}")
    if _port_busy(settings.controller_port):
        changes["controller_port"] = free_port()
        say(f"port {settings.controller_port} is busy: the broker's controller uses {changes['controller_port']}")
    if _port_busy(settings.cdn_port):
        changes["cdn_port"] = free_port()
        say(f"port {settings.cdn_port} is busy: the CDN uses {changes['cdn_port']}")
    cdn_port = changes.get("cdn_port", settings.cdn_port)
    changes["cdn_base_url"] = f"http://127.0.0.1:{cdn_port}"
    if _port_busy(settings.api_port):
        changes["api_port"] = free_port()
        say(f"port {settings.api_port} is busy: the API uses {changes['api_port']}")
    return replace(settings, **changes)


def child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "PLAYLOG_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "PLAYLOG_DATA_DIR": str(settings.data_dir),
        "PLAYLOG_TOPIC_PREFIX": settings.topic_prefix,
        "PLAYLOG_CDN_PORT": str(settings.cdn_port),
        "PLAYLOG_CDN_BASE_URL": settings.cdn_base_url,
        "PLAYLOG_API_PORT": str(settings.api_port),
        "PLAYLOG_KAFKA_CONTROLLER_PORT": str(settings.controller_port),
        "PLAYLOG_SIGNING_KEYS": ",".join(f"{k}:{v}" for k, v in settings.signing_keys.items()),
        "PLAYLOG_TOKEN_SECRET": settings.token_secret,
    })
    return env


class Service:
    """A ``playlog <verb>`` subprocess in its own process group, its output in a log file."""

    def __init__(self, verb: str, settings: Settings, log_dir: Path, health_url: str):
        self.verb = verb
        self.settings = settings
        self.log = log_dir / f"{verb}.log"
        self.health_url = health_url
        self.proc: subprocess.Popen | None = None

    def start(self) -> Service:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "playlog.cli", self.verb], env=child_env(self.settings),
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_healthy(self, timeout: float, want_ok: bool = True) -> None:
        """Until the health URL answers (200 when ``want_ok``, any HTTP answer otherwise)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise PlaylogError(f"'playlog {self.verb}' exited; see {self.log}")
            try:
                with urllib.request.urlopen(self.health_url, timeout=2) as r:  # noqa: S310 (loopback)
                    if r.status == 200:
                        return
            except urllib.error.HTTPError:
                if not want_ok:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise PlaylogError(f"'playlog {self.verb}' not healthy at {self.health_url} within {timeout:.0f}s; see {self.log}")

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@dataclass
class Stack:
    """Everything the demo started; ``stop()`` ends it all (in reverse order), whatever failed."""

    broker: object | None = None
    worker: object | None = None
    services: list[Service] = field(default_factory=list)

    def stop(self) -> None:
        for svc in reversed(self.services):
            try:
                svc.stop()
            except Exception:  # keep stopping the rest
                log.exception("stopping %s", svc.verb)
        if self.worker is not None:
            try:
                self.worker.stop()  # type: ignore[attr-defined]
            except Exception:
                log.exception("stopping the worker")
        if self.broker is not None:
            try:
                self.broker.stop()  # type: ignore[attr-defined]
            except Exception:
                log.exception("stopping the broker")

    def pids(self) -> list[int]:
        out = [s.proc.pid for s in self.services if s.proc is not None]
        for p in (self.worker, self.broker):
            proc = getattr(p, "proc", None)
            if proc is not None:
                out.append(proc.pid)
        return out


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (and SIGHUP) stop the demo like Ctrl-C does: through the ``finally`` that stops everything."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


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


def pool_amount(country: str, product: str) -> int:
    """A deterministic pool per (country, product): premium pools are larger."""
    factor = 3 + sum(map(ord, country)) % 5
    return POOL_BASE_MICROS * factor * (4 if product == "premium" else 1) + 123_457  # odd micros: rounding shows


def pool_events(periods: list[str], countries: list[str], at_ms: int) -> list[dict]:
    return [
        {"type": "royalty.pool_declared", "event_id": f"demo-pool-{period}-{c}-{p}", "occurred_at": at_ms,
         "period": period, "country": c, "product": p, "amount_micros": pool_amount(c, p), "currency": "EUR"}
        for period in periods for c in countries for p in ("free", "premium")
    ]


def periods_between(start_ms: int, end_ms: int) -> list[str]:
    from core.timefmt import period_of

    out = []
    t = start_ms
    while True:
        p = period_of(t)
        if p not in out:
            out.append(p)
        if t >= end_ms:
            break
        t = min(end_ms, t + 86_400_000)
    return out


# ==================================================================================================
# checks and figures


def royalty_figures(statements: dict[str, str], pools: dict[tuple[str, str, str], int]) -> dict:
    """Per (period, country, product): lines, streams, total paid vs pool; top lines; consistency."""
    from processors.statement import parse_csv

    groups: dict[tuple[str, str, str], dict] = {}
    lines = []
    for text in statements.values():
        for ln in parse_csv(text):
            lines.append(ln)
            g = groups.setdefault((ln.period, ln.country, ln.product), {"lines": 0, "paid": 0, "track_streams": {}})
            g["lines"] += 1
            g["paid"] += ln.amount_micros
            g["track_streams"][ln.track_id] = max(g["track_streams"].get(ln.track_id, 0), ln.streams)
    out_groups = []
    consistent = True
    for key in sorted(groups):
        g = groups[key]
        pool = pools.get(key, 0)
        ok = g["paid"] == pool
        consistent &= ok
        out_groups.append({"period": key[0], "country": key[1], "product": key[2], "lines": g["lines"],
                           "paid_micros": g["paid"], "pool_micros": pool, "sums_to_pool": ok})
    by_holder: dict[str, int] = {}
    by_track: dict[str, int] = {}
    for ln in lines:
        by_holder[ln.rightsholder_id] = by_holder.get(ln.rightsholder_id, 0) + ln.amount_micros
    streams_total = 0
    for g in groups.values():
        for t, s in g["track_streams"].items():
            by_track[t] = by_track.get(t, 0) + s
            streams_total += s
    top = sorted(lines, key=lambda ln: (-ln.amount_micros, ln.period, ln.country, ln.product, ln.rightsholder_id))
    return {
        "lines": len(lines),
        "groups": out_groups,
        "consistent": consistent and bool(lines),
        "paid_micros": sum(ln.amount_micros for ln in lines),
        "pools_with_streams_micros": sum(g["pool_micros"] for g in out_groups),
        "pools_declared_micros": sum(pools.values()),
        "streams": streams_total,
        "streams_by_track": dict(sorted(by_track.items(), key=lambda kv: (-kv[1], kv[0]))),
        "payout_by_rightsholder": dict(sorted(by_holder.items(), key=lambda kv: (-kv[1], kv[0]))),
        "top_lines": [ln._asdict() for ln in top[:10]],
    }


_METRIC = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+([-+0-9.eEinfNa]+)$")


def parse_prometheus(text: str) -> dict[str, float]:
    """``name{labels}`` -> value for every sample line (labels kept verbatim)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC.match(line.strip())
        if m:
            with contextlib.suppress(ValueError):
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def histogram_quantiles(samples: dict[str, float], metric: str, by: str,
                        qs: tuple[float, ...] = (0.5, 0.95)) -> dict[str, dict[str, float]]:
    """Per value of label ``by``: the count and, for each quantile, the upper bound (ms) of the
    bucket it falls in, from a Prometheus histogram's cumulative ``_bucket`` samples."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    for key, value in samples.items():
        if not key.startswith(metric + "_bucket{"):
            continue
        labels = dict(_LABEL.findall(key))
        le = labels.get("le")
        if le is None or by not in labels:
            continue
        bound = math.inf if le == "+Inf" else float(le)
        buckets.setdefault(labels[by], []).append((bound, value))
    out: dict[str, dict[str, float]] = {}
    for name, bs in sorted(buckets.items()):
        agg: dict[float, float] = {}
        for bound, v in bs:  # several series (methods) may share a route: add them up
            agg[bound] = agg.get(bound, 0.0) + v
        ordered = sorted(agg.items())
        total = ordered[-1][1] if ordered else 0.0
        if total <= 0:
            continue
        row: dict[str, float] = {"n": int(total)}
        for q in qs:
            bound = next(b for b, c in ordered if c >= q * total)
            row[f"p{int(q * 100)}_le"] = bound * 1000 if math.isfinite(bound) else math.inf
        out[name] = row
    return out


def api_figures(api_url: str) -> dict:
    with urllib.request.urlopen(f"{api_url}/metrics", timeout=5) as r:  # noqa: S310 (loopback)
        m = parse_prometheus(r.read().decode())
    return {"server_latency_ms": histogram_quantiles(m, "playlog_api_request_seconds", "route")}


def cdn_figures(cdn_url: str) -> dict:
    with urllib.request.urlopen(f"{cdn_url}/metrics", timeout=5) as r:  # noqa: S310 (loopback)
        m = parse_prometheus(r.read().decode())
    hits = m.get("playlog_cdn_cache_hits_total", m.get("playlog_cdn_cache_hits", 0.0))
    misses = m.get("playlog_cdn_cache_misses_total", m.get("playlog_cdn_cache_misses", 0.0))
    served = m.get("playlog_cdn_bytes_served_total", m.get("playlog_cdn_bytes_served", 0.0))
    statuses = {k.split('"')[1]: int(v) for k, v in m.items() if k.startswith("playlog_cdn_requests") and '"' in k}
    return {"bytes_served": int(served), "hits": int(hits), "misses": int(misses),
            "hit_ratio": hits / (hits + misses) if hits + misses else 0.0, "requests_by_status": statuses}


def range_fetch(settings: Settings, file_id: str, segment: int = 0, length: int = 4096) -> dict:
    """Sign one segment URL and fetch its first ``length`` bytes with a Range request."""
    from playback.signing import Signer

    url = Signer.from_settings(settings).sign_segment_url(settings.cdn_base_url, file_id, segment, now=time.time(), ttl=600)
    req = urllib.request.Request(url, headers={"Range": f"bytes=0-{length - 1}"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 (loopback)
        body = r.read()
        return {"url": url, "status": r.status, "content_range": r.headers.get("Content-Range"),
                "content_type": r.headers.get("Content-Type"), "bytes": len(body)}


def view_counts(settings: Settings) -> dict[str, int]:
    """Documents (distinct keys, last value not a tombstone) on every view.* topic."""
    from topics.kafka_io import iter_batches
    from topics.topic_catalog import load_catalog

    names = [settings.topic_prefix + t.name for t in load_catalog() if t.name.startswith("view.")]
    keys: dict[str, dict[bytes, bool]] = {n: {} for n in names}
    for batch in iter_batches(settings, names):
        for r in batch:
            keys[r.topic][r.key or b""] = r.value is not None
    return {n[len(settings.topic_prefix):]: sum(keys[n].values()) for n in names}


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
        self.stack = Stack()
        self.timeline: list[dict] = []  # samples over the run (events/s, lag, cdn)
        self.figures: dict = {}
        self.api_url: str | None = None

    # -- phases ----------------------------------------------------------------------------------
    def start_broker(self) -> None:
        from devstack.kafka import from_settings
        from topics.admin import create_topics

        self.settings = pick_ports(self.settings, self.say)
        broker = from_settings(self.settings)
        self.stack.broker = broker
        self.say(f"starting Kafka on {broker.bootstrap} (data {broker.data_dir}) ...")
        secs = broker.start(timeout=120)
        created = create_topics(self.settings)
        self.say(f"  broker ready in {secs:.1f}s; {len(created)} topics created")
        self.figures["broker_ready_s"] = round(secs, 2)

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
        from demo import simulator
        from topics.producer import KafkaEventSink

        self.population = simulator.make_population(
            self.opts.listeners, self.opts.seed, genres=self._genres(),
            artists=sorted({x for a in self.catalog.audio for x in a.track.get("artist_ids", [])}))
        sink = KafkaEventSink(self.settings)
        now = int(time.time() * 1000)
        for ev in simulator.registration_events(self.population, now - 86_400_000):
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
        from devstack.workers import WorkerProcess

        s = self.settings
        log_dir = self.demo_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stack.worker = WorkerProcess(s, log_dir).start()
        cdn = Service("cdn", s, log_dir, f"{s.cdn_base_url}/healthz").start()
        self.stack.services.append(cdn)
        self.say(f"worker started (web {self.stack.worker.url}), CDN on {s.cdn_base_url}; logs in {log_dir}")
        cdn.wait_healthy(60)

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
        from demo.simulator import TrackInfo
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
        s = self.settings
        api = Service("api", s, self.demo_dir / "logs", f"http://127.0.0.1:{s.api_port}/healthz").start()
        self.stack.services.append(api)
        api.wait_healthy(120)
        self.api_url = f"http://127.0.0.1:{s.api_port}"
        self.wait_api_views()
        self.say(f"API on {self.api_url} (replica caught up: {len(self.population)} users, {len(self.audio)} tracks with audio)")

    def wait_api_views(self, timeout: float = 120.0) -> None:
        """Until the API's read replica knows every listener and the ladder of every audio track."""
        from playback import auth

        deadline = time.monotonic() + timeout
        u = self.population[-1]
        token = auth.issue_token(u.user_id, self.settings.token_secret, now=time.time(), ttl=600)
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

        from demo import simulator

        o = self.opts
        tracks, renditions = self.tracks_and_renditions()
        settings = self.settings
        if self.api_url:
            by_id = {t.track_id: t for t in tracks}

            def make(session, stats):
                return simulator.ApiClient(settings, session, self.api_url, stats, by_id)
        else:
            def make(session, stats):
                return simulator.DirectClient(settings, session, renditions, stats)
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
        wait_caught_up(self.settings, [self.stack.worker], timeout=180)
        drain = time.monotonic() - t0
        self.owner = owner([self.stack.worker])
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

        wait_caught_up(self.settings, [self.stack.worker], timeout=180)  # so the lag measured is the load's
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


class LagSampler(threading.Thread):
    """Once a second: events produced so far (from the simulator) and the worker group's lag."""

    def __init__(self, settings: Settings, timeline: list[dict], every: float = 1.0, cdn_url: str | None = None):
        super().__init__(name="lag-sampler", daemon=True)
        self.settings = settings
        self.cdn_url = cdn_url
        self.timeline = timeline
        self.every = every
        self._stop_event = threading.Event()
        self.events = 0
        self.t0 = time.monotonic()

    def note_events(self, produced: int) -> None:
        self.events = produced

    def run(self) -> None:
        from devstack.workers import source_lag

        last_events, last_t = 0, self.t0
        while not self._stop_event.wait(self.every):
            now = time.monotonic()
            try:
                lag = sum(source_lag(self.settings).values())
            except Exception:  # a sample lost is not worth failing the demo
                lag = None
            cdn: dict = {}
            if self.cdn_url:
                try:
                    c = cdn_figures(self.cdn_url)
                    cdn = {"cdn_hit_ratio": round(c["hit_ratio"], 4), "cdn_bytes": c["bytes_served"]}
                except (OSError, ValueError):
                    pass
            ev = self.events
            self.timeline.append({"t": round(now - self.t0, 2), "events": ev,
                                  "events_per_s": round((ev - last_events) / max(1e-6, now - last_t), 1),
                                  "lag": lag, **cdn})
            last_events, last_t = ev, now

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)


def print_summary(s: dict, say=click.echo) -> None:
    sim = s["simulation"]
    r = s["royalties"]
    say("")
    say("=" * 72)
    say(f"playlog demo summary ({s['seconds']:.0f}s simulated at {s['speed']:g}x, {s['listeners']} listeners)")
    say("=" * 72)
    say(f"events produced   {sim['events']:,} listening events, {sim['events_per_s']:,.0f} events/s")
    say(f"plays             {sim['plays']:,} plays: {sim['completed']:,} completed, {sim['skipped']:,} skipped"
        f"; {r['streams']:,} royalty streams")
    say(f"playback          rebuffer ratio {sim['rebuffer_ratio']:.2%} ({sim['rebuffers']:,} stalls), "
        f"{sim['segments']:,} segments fetched ({sim['status_206']:,} answered 206), {sim['prefetches']:,} prefetches, "
        f"{sim['offline_plays']:,} offline plays uploaded late, {sim['blocked']:,} plays refused (rights)")
    lat = sim.get("latency_ms", {})
    if lat:
        say("API, as listeners saw it (incl. the simulator's own queueing)\n                  " + ", ".join(
            f"{name} p50 {v['p50']:.1f} ms / p95 {v['p95']:.1f} ms" for name, v in lat.items() if v.get("n")))
    server = s.get("api", {}).get("server_latency_ms", {})
    if server:
        shown = {k: v for k, v in server.items() if k.startswith("/v1/")}
        say("API server side   " + ", ".join(
            f"{k} p50 <= {v['p50_le']:g} ms / p95 <= {v['p95_le']:g} ms" for k, v in shown.items()))
    say(f"event->view lag   max {s['lag']['max_records']:,} records behind; drained in {s['lag']['drain_s']}s "
        f"after the load stopped (final lag {s['lag']['final_lag']})")
    say("views             " + ", ".join(f"{k} {v:,}" for k, v in s["views"].items()))
    say(f"royalties         {r['lines']} statement lines; paid {r['paid_micros'] / 1e6:,.6f} of pools "
        f"{r['pools_with_streams_micros'] / 1e6:,.6f} (groups with streams) -> "
        f"{'every (period, country, product) sums exactly to its pool' if r['consistent'] else 'MISMATCH'}")
    for ln in r["top_lines"][:5]:
        say(f"    {ln['period']} {ln['country']} {ln['product']:<7} {ln['rightsholder_id']:<28} {ln['track_id']:<18} "
            f"{ln['streams']:>5} streams {ln['amount_micros'] / 1e6:>14,.6f}")
    rf = s["range_fetch"]
    say(f"signed segment    {rf['url']}")
    say(f"                  Range bytes=0-4095 -> {rf['status']} {rf['content_range']} ({rf['bytes']} bytes, {rf['content_type']})")
    c = s["cdn"]
    say(f"CDN               {c['bytes_served'] / 1e6:,.1f} MB served, cache hit ratio {c['hit_ratio']:.1%} "
        f"({c['hits']:,} hits / {c['misses']:,} misses)")
    if s.get("report"):
        say(f"report            {s['report']}")
    say(f"wall time         {s['wall_s']}s")


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
