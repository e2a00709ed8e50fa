"""What the demo reads off the running stack: API and CDN metrics, a signed Range fetch, view
counts on the view topics, and a sampler of events/s and consumer lag over the run."""

from __future__ import annotations

import threading
import time
import urllib.request

from core.settings import Settings
from demo.figures import histogram_quantiles, parse_prometheus


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
