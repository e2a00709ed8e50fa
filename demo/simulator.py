"""The listener simulator's loop (demo and benchmarks): thousands of listeners in one asyncio process.

A listener runs sessions: home -> pick a track by taste -> play -> manifest -> per 10-second
segment: adaptive bitrate choice from the bandwidth estimate and the buffer level -> Range fetch of
the segment from the CDN -> ``play.started``, ``play.progress`` every 10 s, then ``play.skipped`` or
``play.completed`` as the taste decides; the next track's first segment is prefetched near the end
of a track; a few plays happen offline (no network) and their events are uploaded at the start of
the next session with their original times; stalls of the playback buffer are counted as rebuffers.

Time is compressed: ``speed`` simulated seconds pass per wall-clock second; event times are
simulated times (starting at the wall clock); through the API they are sent as the wall-clock
moments they were simulated at (:meth:`Clock.real_ms`), since the API bounds a client's event time.
Through the API every play is reported under the ``play_id`` the server issued with its manifest
(offline plays: with the manifest fetched for offline listening), as a real client must. Downloads are as fast as loopback allows, and their
*simulated* duration is the segment's bytes over the listener's simulated bandwidth. The decisions
are in demo/model.py, the transports in demo/clients.py.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from demo.clients import ApiClient, Transport, fetch_segment
from demo.model import (
    PROFILES,
    Buffer,
    Listener,
    Stats,
    TrackInfo,
    choose_rung,
    choose_track,
    download,
    estimate_bandwidth,
    listen_outcome,
    play_events,
    sample_bandwidth,
    segments_needed,
    session_plan,
)

log = logging.getLogger(__name__)


@dataclass
class Clock:
    """Simulated epoch ms: starts at the wall clock, runs ``speed`` times faster."""

    def __init__(self, speed: float, start_ms: int | None = None):
        self.speed = speed
        self.start_ms = int(time.time() * 1000) if start_ms is None else start_ms
        self._t0 = time.monotonic()

    def now_ms(self) -> int:
        return self.start_ms + int((time.monotonic() - self._t0) * self.speed * 1000)

    def real_ms(self, sim_ms: int) -> int:
        """The wall-clock epoch ms at which the simulation was at ``sim_ms``."""
        return self.start_ms + int((sim_ms - self.start_ms) / self.speed)

    async def sleep_sim(self, sim_s: float) -> None:
        if sim_s > 0:
            await asyncio.sleep(sim_s / self.speed)


async def listener_loop(listener: Listener, transport: Transport, tracks: Sequence[TrackInfo], clock: Clock,
                        stop: asyncio.Event, seed: int, session: Any, search_terms: Sequence[str] = ()) -> None:
    """One listener: sessions of plays until ``stop`` is set."""
    rng = random.Random(f"{seed}-{listener.user_id}")
    stats = transport.stats
    profile = PROFILES[listener.profile]
    estimate: float | None = None
    pending_offline: list[dict] = []
    play_no = 0
    prefetched: tuple[str, int] | None = None
    unplayable: set[str] = set()  # tracks the API refused for this listener (rights in the country)
    await clock.sleep_sim(rng.uniform(0, 60))  # listeners do not all start at once
    while not stop.is_set():
        plan = session_plan(rng, listener)
        if not plan.offline:
            if pending_offline:
                await transport.send(listener, pending_offline)  # offline plays, uploaded late
                pending_offline = []
            if isinstance(transport, ApiClient) and search_terms and rng.random() < 0.3:
                await transport.search(listener, rng.choice(search_terms))
            candidates = await transport.home(listener)
        else:
            candidates = []
        choices = [t for t in (candidates or tracks) if t.track_id not in unplayable] or list(tracks)
        nxt = choose_track(rng, listener, choices)
        for _ in range(plan.tracks):
            if stop.is_set():
                break
            track = nxt
            nxt = choose_track(rng, listener, choices, avoid=track.track_id)
            play_no += 1
            play_id = f"{listener.user_id}-p{seed}-{play_no}"  # the transport's own, unless the server issues one
            outcome, ms = listen_outcome(rng, listener, track)
            start_ms = clock.now_ms()
            if plan.offline:
                issued = await transport.offline_play_id(listener, track)
                if isinstance(transport, ApiClient):
                    if issued is None:  # no offline licence for this track
                        stats.blocked += 1
                        unplayable.add(track.track_id)
                        continue
                    play_id = issued
                pending_offline.extend(play_events(listener, track.track_id, play_id, start_ms, outcome, ms,
                                                   offline=True))
                stats.plays += 1
                stats.offline_plays += 1
                stats.played_s += ms / 1000
                stats.completed += outcome == "completed"
                stats.skipped += outcome == "skipped"
                stats.per_track[track.track_id] = stats.per_track.get(track.track_id, 0) + 1
                await clock.sleep_sim(ms / 1000)
                continue
            if not await transport.play(listener, track):
                stats.blocked += 1
                unplayable.add(track.track_id)
                choices = [t for t in choices if t.track_id != track.track_id] or choices
                continue
            manifest = await transport.manifest(listener, track)
            if manifest is None:
                stats.blocked += 1
                unplayable.add(track.track_id)
                choices = [t for t in choices if t.track_id != track.track_id] or choices
                continue
            play_id = getattr(manifest, "play_id", None) or play_id  # the play the server issued
            bitrates = [r["bitrate_kbps"] for r in manifest.rungs]
            seg_ms = manifest.segment_ms
            seg_s = seg_ms / 1000
            need = segments_needed(ms, seg_ms, manifest.rungs[0]["segment_count"])
            buf = Buffer()
            events = play_events(listener, track.track_id, play_id, start_ms, outcome, ms)
            progress = events[1:-1]
            played_ms = 0
            use_prefetch = prefetched is not None and prefetched[0] == track.track_id
            prefetched = None
            for k in range(need):
                if stop.is_set() and k > 0:
                    break
                if k == 0 and use_prefetch:
                    dl_s = 0.0  # the first segment is already here: instant start
                else:
                    i = choose_rung(bitrates, estimate, buf.level_s)
                    stats.rung_counts[bitrates[i]] = stats.rung_counts.get(bitrates[i], 0) + 1
                    nbytes = await fetch_segment(session, manifest.rungs[i]["segments"][k], stats)
                    bw = sample_bandwidth(rng, profile)
                    estimate = estimate_bandwidth(estimate, bw)
                    dl_s = nbytes * 8 / (bw * 1000)
                before = buf.stall_s
                buf = download(buf, dl_s, seg_s)
                if k == 0:
                    await transport.send(listener, [{**events[0], "occurred_at": clock.now_ms()}])
                # play this segment (and sit through any stall) in simulated time, then report progress
                chunk = min(seg_ms, ms - k * seg_ms)
                await clock.sleep_sim(chunk / 1000 + (buf.stall_s - before))
                played_ms += chunk
                due = [e for e in progress if e["ms_played"] <= played_ms]
                if due:
                    progress = progress[len(due):]
                    await transport.send(listener, [{**e, "occurred_at": clock.now_ms()} for e in due])
                if k == need - 2 or need == 1:  # near the end: prefetch the next track's first segment
                    nm = await transport.manifest(listener, nxt)
                    if nm is not None:
                        j = choose_rung([r["bitrate_kbps"] for r in nm.rungs], estimate, buf.level_s)
                        stats.rung_counts[nm.rungs[j]["bitrate_kbps"]] = stats.rung_counts.get(nm.rungs[j]["bitrate_kbps"], 0) + 1
                        await fetch_segment(session, nm.rungs[j]["segments"][0], stats)
                        stats.prefetches += 1
                        prefetched = (nxt.track_id, j)
            end = events[-1]
            if played_ms < ms:  # the run stopped mid-play: the listener closes the app
                end = {**end, "type": "play.skipped", "ms_played": max(1, played_ms)}
                outcome = "skipped"
            await transport.send(listener, [{**end, "occurred_at": clock.now_ms()}])
            stats.plays += 1
            stats.completed += outcome == "completed"
            stats.skipped += outcome == "skipped"
            stats.rebuffers += buf.rebuffers
            stats.stall_s += buf.stall_s
            stats.played_s += played_ms / 1000
            stats.startup_s += buf.startup_s
            stats.per_track[track.track_id] = stats.per_track.get(track.track_id, 0) + 1
        await clock.sleep_sim(plan.gap_before_ms / 1000)
    if pending_offline:  # the app comes back online before the run ends
        await transport.send(listener, pending_offline)


async def run(listeners: Sequence[Listener], make_transport: Callable[[Any, Stats], Transport],
              tracks: Sequence[TrackInfo], *, seconds: float, speed: float, seed: int,
              on_tick: Callable[[int], None] | None = None, search_terms: Sequence[str] = (),
              connections: int = 200) -> dict[str, Any]:
    """Run every listener for ``seconds`` of wall-clock time; returns the statistics."""
    import aiohttp

    stats = Stats()
    clock = Clock(speed)
    stop = asyncio.Event()
    conn = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        transport = make_transport(session, stats)
        transport.use_clock(clock)
        tasks = [asyncio.create_task(listener_loop(u, transport, tracks, clock, stop, seed, session, search_terms))
                 for u in listeners]
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < seconds:
                await asyncio.sleep(min(0.25, seconds - (time.monotonic() - t0)))
                if on_tick:
                    on_tick(stats.events)
                for t in tasks:
                    if t.done() and not t.cancelled() and t.exception() is not None:
                        raise t.exception()  # type: ignore[misc]
            stop.set()
            # let plays in flight finish (their end events), but not for long
            done, pending = await asyncio.wait(tasks, timeout=max(5.0, 120 / speed))
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            stop.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await transport.close()
        wall = time.monotonic() - t0
    if on_tick:
        on_tick(stats.events)
    out = stats.summary()
    out.update(wall_s=round(wall, 2), events_per_s=stats.events / wall if wall else 0.0,
               sim_start_ms=clock.start_ms, sim_end_ms=clock.now_ms(), speed=speed)
    return out
