"""How simulated listeners reach the stack (thin transports): through the playback API and CDN
(:class:`ApiClient`), or straight to Kafka with locally signed segment URLs (:class:`DirectClient`).

Through the API a listener is an untrusted client (DESIGN.md "The trust boundary"): it reports a
play under the ``play_id`` its manifest issued (:class:`IssuedManifest`), an offline play under the
``play_id`` of the manifest fetched for it while online (:meth:`Transport.offline_play_id`), and its
events carry real event times: the simulated clock runs ``speed`` times faster than the wall clock,
so :meth:`ApiClient.send` maps each simulated time to the wall-clock moment it was simulated at
(:meth:`demo.simulator.Clock.real_ms`), which the API's event-time window accepts. Direct mode
produces as a trusted producer: its play ids and simulated times go to Kafka as they are."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from demo.model import Listener, Manifest, Stats, TrackInfo
from playback.ids import internal_id
from processors.rules import FREE_MAX_KBPS

log = logging.getLogger(__name__)


@dataclass
class IssuedManifest(Manifest):
    """A manifest with the play the server issued for it (``None`` when the server issues none)."""

    play_id: str | None = None


class SimClock(Protocol):
    def now_ms(self) -> int: ...

    def real_ms(self, sim_ms: int) -> int: ...


class Transport:
    """What a listener needs from the outside world (API mode or direct mode)."""

    stats: Stats

    async def home(self, listener: Listener) -> list[TrackInfo]:  # candidates from home shelves
        return []

    async def play(self, listener: Listener, track: TrackInfo) -> bool:
        return True

    async def manifest(self, listener: Listener, track: TrackInfo) -> Manifest | None:
        raise NotImplementedError

    async def offline_play_id(self, listener: Listener, track: TrackInfo) -> str | None:
        """The play id of an offline play of ``track``: the transport's own (None), or the one the
        server issued with the manifest downloaded for offline listening."""
        return None

    def use_clock(self, clock: SimClock) -> None:
        """The simulated clock the events' times come from."""
        return None

    async def send(self, listener: Listener, events: list[dict]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None


async def fetch_segment(session: Any, url: str, stats: Stats) -> int:
    """GET one segment with ``Range: bytes=0-`` (as players do); returns the body size."""
    async with session.get(url, headers={"Range": "bytes=0-"}) as r:
        body = await r.read()
        if r.status == 206:
            stats.status_206 += 1
        elif r.status != 200:
            stats.errors += 1
            return 0
    stats.bytes += len(body)
    stats.segments += 1
    return len(body)


class DirectClient(Transport):
    """No API: manifests signed locally from the ingest's renditions, events produced to Kafka."""

    def __init__(self, settings: Any, session: Any, renditions: dict[str, list[dict]], stats: Stats):
        from playback.signing import Signer
        from topics.producer import EventProducer

        self.settings = settings
        self.session = session
        self.renditions = renditions  # track_id -> [{"file_id", "bitrate_kbps", "segment_ms", "segment_count"}]
        self.signer = Signer.from_settings(settings)
        self.producer = EventProducer(settings)
        self.stats = stats

    async def manifest(self, listener: Listener, track: TrackInfo) -> Manifest | None:
        rs = self.renditions.get(track.track_id)
        if not rs:
            return None
        allowed = sorted((r for r in rs if listener.product == "premium" or r["bitrate_kbps"] <= FREE_MAX_KBPS),
                         key=lambda r: r["bitrate_kbps"])
        now = time.time()
        rungs = [{**r, "segments": [self.signer.sign_segment_url(self.settings.cdn_base_url, r["file_id"], k, now=now)
                                    for k in range(r["segment_count"])]} for r in allowed]
        return Manifest(track.track_id, allowed[0]["segment_ms"], rungs)

    async def send(self, listener: Listener, events: list[dict]) -> None:
        for e in events:
            self.producer.produce(e)
        self.stats.events += len(events)

    async def close(self) -> None:
        await asyncio.to_thread(self.producer.flush)


class ApiClient(Transport):
    """Through the playback API: home, play, manifest and ``POST /v1/events`` with a bearer token."""

    def __init__(self, settings: Any, session: Any, api_url: str, stats: Stats, tracks: dict[str, TrackInfo]):
        from playback import auth
        from schemas.codec import default_codec

        self.session = session
        self.api = api_url.rstrip("/")
        self.stats = stats
        self.tracks = tracks
        self.codec = default_codec()
        self._auth = auth
        self._secret = auth.key_ring(settings)  # the first key signs, as playlog token does
        self._tokens: dict[str, str] = {}
        self.clock: SimClock | None = None

    def use_clock(self, clock: SimClock) -> None:
        self.clock = clock

    def _headers(self, listener: Listener) -> dict[str, str]:
        tok = self._tokens.get(listener.user_id)
        if tok is None:
            tok = self._auth.issue_token(listener.user_id, self._secret, now=time.time(), ttl=86_400)
            self._tokens[listener.user_id] = tok
        return {"Authorization": f"Bearer {tok}"}

    async def _call(self, name: str, method: str, path: str, listener: Listener, **kw: Any) -> tuple[int, Any]:
        t0 = time.perf_counter()
        async with self.session.request(method, self.api + path, headers=self._headers(listener), **kw) as r:
            body = await r.read()
            status = r.status
        self.stats.latency(name, time.perf_counter() - t0)
        if status >= 500:
            self.stats.errors += 1
        try:
            import orjson

            return status, orjson.loads(body) if body else None
        except ValueError:
            return status, None

    async def home(self, listener: Listener) -> list[TrackInfo]:
        status, body = await self._call("home", "GET", "/v1/views/home", listener)
        if status != 200 or not isinstance(body, dict):
            return []
        out = []
        for shelf in body.get("shelves") or []:
            for item in shelf.get("items") or []:
                track_id = internal_id(str(item.get("id") or ""))  # objects carry the public id (playback/ids.py)
                if item.get("has_audio") and item.get("is_playable", True) and track_id in self.tracks:
                    out.append(self.tracks[track_id])
        return out

    async def search(self, listener: Listener, q: str) -> int:
        status, _ = await self._call("search", "GET", "/v1/search", listener, params={"q": q, "type": "track", "limit": "10"})
        return status

    async def play(self, listener: Listener, track: TrackInfo) -> bool:
        status, _ = await self._call("play", "PUT", "/v1/me/player/play", listener,
                                     json={"uris": [f"spotify:track:{track.track_id}"], "device_id": listener.device_id})
        return status == 204

    async def manifest(self, listener: Listener, track: TrackInfo) -> IssuedManifest | None:
        status, body = await self._call("manifest", "GET", f"/v1/playback/{track.track_id}/manifest", listener)
        if status != 200 or not isinstance(body, dict) or not body.get("rungs"):
            return None
        rungs = sorted(body["rungs"], key=lambda r: r["bitrate_kbps"])
        return IssuedManifest(body.get("track_id", track.track_id), rungs[0]["segment_ms"], rungs,
                              play_id=body.get("play_id"))

    async def offline_play_id(self, listener: Listener, track: TrackInfo) -> str | None:
        """The offline licence: the manifest of a track saved for offline listening, fetched while
        online (in the simulation: when the offline play is picked); None if the track is refused."""
        manifest = await self.manifest(listener, track)
        return None if manifest is None else manifest.play_id

    async def send(self, listener: Listener, events: list[dict]) -> None:
        clock = self.clock
        if clock is not None:  # simulated times -> the wall-clock moments they were simulated at
            events = [{**e, "occurred_at": clock.real_ms(e["occurred_at"])} for e in events]
        payload = {"events": [self.codec.to_json(e) for e in events]}
        status, body = await self._call("events", "POST", "/v1/events", listener, json=payload)
        if status == 202:
            self.stats.events += len(events)
        else:
            self.stats.errors += 1
            log.warning("POST /v1/events -> %s %s", status, body)
