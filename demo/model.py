"""The listener simulator's model (pure): who listens, what they pick, skip or finish, how the
player adapts its bitrate and fills its buffer, what events a play makes, and the statistics.

Each listener has a country, a tier, a device, a taste (genre weights drawn from a Dirichlet
distribution, a favourite artist or two) and a network (bandwidth profile: wifi, 4G, or a 3G-like
link that sometimes dips below the lowest rung). Everything here is a pure function of its inputs
and a ``random.Random``; the network (demo/clients.py) and the asyncio loop (demo/simulator.py)
are apart.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from processors.rules import MIN_STREAM_MS

# ==================================================================================================
# the population (pure)

COUNTRY_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("US", 0.30), ("GB", 0.12), ("DE", 0.12), ("BR", 0.10), ("SE", 0.08), ("FR", 0.08), ("JP", 0.08),
    ("MX", 0.06), ("IN", 0.06),
)
PREMIUM_SHARE = 0.45
DEVICE_TYPES = ("phone", "phone", "phone", "computer", "speaker", "web", "car", "tv")


@dataclass(frozen=True)
class Profile:
    """A network: mean bandwidth (kbps), relative jitter, chance of a deep dip per segment."""

    name: str
    mean_kbps: float
    jitter: float
    dip_chance: float
    dip_kbps: float


PROFILES: dict[str, Profile] = {
    "wifi": Profile("wifi", 25_000, 0.3, 0.01, 2_000),
    "4g": Profile("4g", 6_000, 0.5, 0.03, 500),
    "3g": Profile("3g", 900, 0.5, 0.15, 60),  # 3G-like: dips below the lowest rung now and then
}
PROFILE_WEIGHTS = (("wifi", 0.5), ("4g", 0.3), ("3g", 0.2))


@dataclass(frozen=True)
class Listener:
    user_id: str
    country: str
    product: str  # free | premium
    device_id: str
    device_type: str
    profile: str  # key of PROFILES
    genre_weights: dict[str, float]  # sums to 1 over the catalog's genres
    favourite_artists: tuple[str, ...] = ()
    offline_rate: float = 0.0  # chance a play happens offline (uploaded later)
    skip_bias: float = 0.0  # -0.2 (patient) .. +0.2 (restless)


def _weighted(rng: random.Random, pairs: Sequence[tuple[str, float]]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def dirichlet(rng: random.Random, n: int, alpha: float) -> list[float]:
    """n weights summing to 1 (small alpha: a few genres dominate, as real taste does)."""
    xs = [rng.gammavariate(alpha, 1.0) for _ in range(n)]
    total = sum(xs)
    if total <= 0:
        return [1.0 / n] * n
    return [x / total for x in xs]


def make_population(n: int, seed: int, genres: Sequence[str], artists: Sequence[str] = (),
                    prefix: str = "sim") -> list[Listener]:
    """``n`` listeners, deterministic for ``seed``."""
    if not genres:
        raise ValueError("the population needs at least one genre")
    rng = random.Random(seed * 7919 + n)
    out = []
    for i in range(n):
        weights = dirichlet(rng, len(genres), 0.4)
        favs = tuple(rng.sample(list(artists), min(len(artists), rng.choice((0, 1, 2))))) if artists else ()
        device_type = rng.choice(DEVICE_TYPES)
        out.append(Listener(
            user_id=f"{prefix}-u{i:06d}", country=_weighted(rng, COUNTRY_WEIGHTS),
            product="premium" if rng.random() < PREMIUM_SHARE else "free",
            device_id=f"{prefix}-d{i:06d}", device_type=device_type,
            profile=_weighted(rng, PROFILE_WEIGHTS),
            genre_weights=dict(zip(genres, weights, strict=True)), favourite_artists=favs,
            offline_rate=0.15 if device_type == "phone" and rng.random() < 0.3 else 0.0,
            skip_bias=rng.uniform(-0.2, 0.2),
        ))
    return out


def registration_events(listeners: Sequence[Listener], at_ms: int) -> list[dict]:
    """``user.registered`` and ``device.registered`` for every listener."""
    out = []
    for k, u in enumerate(listeners):
        out.append({"type": "user.registered", "event_id": f"{u.user_id}-reg", "occurred_at": at_ms + k,
                    "user_id": u.user_id, "country": u.country, "product": u.product,
                    "display_name": f"Listener {u.user_id.rsplit('-', 1)[-1]}"})
        out.append({"type": "device.registered", "event_id": f"{u.device_id}-reg", "occurred_at": at_ms + k + 1,
                    "user_id": u.user_id, "device_id": u.device_id, "device_type": u.device_type,
                    "name": f"{u.device_type} of {u.user_id}"})
    return out


# ==================================================================================================
# taste (pure)


@dataclass(frozen=True)
class TrackInfo:
    track_id: str
    duration_ms: int
    genres: tuple[str, ...] = ()
    artist_ids: tuple[str, ...] = ()


def affinity(listener: Listener, track: TrackInfo) -> float:
    """How much the listener likes the track, in [0, 1]: genre weights, plus a favourite artist."""
    g = sum(listener.genre_weights.get(x, 0.0) for x in track.genres)
    a = 0.5 if any(x in listener.favourite_artists for x in track.artist_ids) else 0.0
    return max(0.0, min(1.0, 0.15 + 1.5 * g + a))


def skip_probability(listener: Listener, track: TrackInfo) -> float:
    return max(0.02, min(0.95, 0.75 - 0.7 * affinity(listener, track) + listener.skip_bias))


def choose_track(rng: random.Random, listener: Listener, tracks: Sequence[TrackInfo],
                 avoid: str | None = None) -> TrackInfo:
    """A track drawn with weight affinity^2 (the listener mostly picks what they like)."""
    if not tracks:
        raise ValueError("no tracks to choose from")
    pool = [t for t in tracks if t.track_id != avoid] or list(tracks)
    weights = [0.02 + affinity(listener, t) ** 2 for t in pool]
    return rng.choices(pool, weights=weights)[0]


def listen_outcome(rng: random.Random, listener: Listener, track: TrackInfo) -> tuple[str, int]:
    """("completed", duration) or ("skipped", ms played before the skip).

    Skips come early more often than late (most skips happen in the first 30 seconds).
    """
    d = max(1, track.duration_ms)
    if rng.random() >= skip_probability(listener, track):
        return "completed", d
    if rng.random() < 0.6:
        ms = int(rng.uniform(1_000, min(MIN_STREAM_MS, d)))
    else:
        ms = int(rng.uniform(min(MIN_STREAM_MS, d), d))
    return "skipped", max(1, min(ms, d - 1)) if d > 1 else 1


def progress_points(ms_played: int, every_ms: int = 10_000) -> list[int]:
    """Cumulative ms of the ``play.progress`` events: every ``every_ms`` strictly before the end."""
    return list(range(every_ms, ms_played, every_ms))


def play_events(listener: Listener, track_id: str, play_id: str, start_ms: int, outcome: str, ms_played: int,
                *, offline: bool = False, context_uri: str | None = None, stall_ms: Sequence[int] = (),
                every_ms: int = 10_000) -> list[dict]:
    """The listening events of one play, with event times (stalls shift the later events)."""
    base = {"play_id": play_id, "user_id": listener.user_id, "track_id": track_id,
            "country": listener.country, "product": listener.product}
    out = [{"type": "play.started", "event_id": f"{play_id}-s", "occurred_at": start_ms, **base,
            "device_id": listener.device_id, "context_uri": context_uri, "offline": offline}]

    def at(ms: int) -> int:  # wall time of position ms: the stalls before it delay it
        seg = ms // every_ms
        return start_ms + ms + sum(stall_ms[: seg + 1])

    for k, ms in enumerate(progress_points(ms_played, every_ms), 1):
        out.append({"type": "play.progress", "event_id": f"{play_id}-p{k}", "occurred_at": at(ms), **base,
                    "ms_played": ms, "context_uri": context_uri})
    end = "play.completed" if outcome == "completed" else "play.skipped"
    out.append({"type": end, "event_id": f"{play_id}-e", "occurred_at": at(ms_played), **base, "ms_played": ms_played})
    return out


@dataclass(frozen=True)
class SessionPlan:
    tracks: int  # plays in this session
    gap_before_ms: int  # idle time before the session starts
    offline: bool  # the whole session without network (plays uploaded at the next online session)


def session_plan(rng: random.Random, listener: Listener) -> SessionPlan:
    return SessionPlan(
        tracks=max(1, min(12, int(rng.expovariate(1 / 4)) + 1)),
        gap_before_ms=int(rng.uniform(5_000, 120_000)),
        offline=rng.random() < listener.offline_rate,
    )


# ==================================================================================================
# adaptive bitrate and the playback buffer (pure)

LOW_BUFFER_S = 6.0  # below this, take the lowest rung
SAFETY = 0.75  # use this much of the estimated bandwidth


def sample_bandwidth(rng: random.Random, profile: Profile) -> float:
    """One segment's available bandwidth (kbps): log-normal around the mean, with rare deep dips."""
    if rng.random() < profile.dip_chance:
        return max(16.0, profile.dip_kbps * rng.uniform(0.5, 1.5))
    sigma = profile.jitter
    return max(16.0, profile.mean_kbps * math.exp(rng.gauss(-sigma * sigma / 2, sigma)))


def estimate_bandwidth(previous: float | None, sample: float, alpha: float = 0.3) -> float:
    """Exponentially weighted estimate of the throughput from the last downloads."""
    return sample if previous is None else (1 - alpha) * previous + alpha * sample


def choose_rung(bitrates_kbps: Sequence[int], estimate_kbps: float | None, buffer_s: float) -> int:
    """Index (into ``bitrates_kbps``, ascending) of the rung to fetch next.

    With no estimate yet, or a buffer below LOW_BUFFER_S: the lowest rung (start fast, refill).
    Otherwise the highest rung within SAFETY x the estimate (x1.0 when the buffer is comfortable,
    over 20 s), never above what the manifest offers.
    """
    if not bitrates_kbps:
        raise ValueError("a manifest with no rungs")
    if estimate_kbps is None or buffer_s < LOW_BUFFER_S:
        return 0
    budget = estimate_kbps * (1.0 if buffer_s >= 20.0 else SAFETY)
    best = 0
    for i, b in enumerate(bitrates_kbps):
        if b <= budget:
            best = i
    return best


@dataclass
class Buffer:
    """The player's buffer over one play: seconds buffered, stalls and their time."""

    level_s: float = 0.0
    started: bool = False
    startup_s: float = 0.0
    rebuffers: int = 0
    stall_s: float = 0.0
    played_s: float = 0.0
    stalls_by_segment: list[float] = field(default_factory=list)


def download(buf: Buffer, download_s: float, segment_s: float, capacity_s: float = 30.0) -> Buffer:
    """The buffer after downloading one segment that takes ``download_s`` (simulated seconds).

    While the segment downloads, playback drains the buffer; if it runs dry after playback has
    started, that is one rebuffer (a stall) lasting the rest of the download. The first segment's
    wait is start-up time, not a rebuffer. A full buffer (``capacity_s``) waits before fetching.
    """
    b = Buffer(buf.level_s, buf.started, buf.startup_s, buf.rebuffers, buf.stall_s, buf.played_s,
               list(buf.stalls_by_segment))
    stall = 0.0
    if not b.started:
        b.startup_s += download_s
        b.started = True
    else:
        wait = max(0.0, b.level_s + segment_s - capacity_s)  # a full buffer plays before fetching more
        b.played_s += wait
        b.level_s -= wait
        if download_s > b.level_s:
            stall = download_s - b.level_s
            b.played_s += b.level_s
            b.level_s = 0.0
            b.rebuffers += 1
            b.stall_s += stall
        else:
            b.level_s -= download_s
            b.played_s += download_s
    b.level_s += segment_s
    b.stalls_by_segment.append(stall)
    return b


def segments_needed(ms_played: int, segment_ms: int, segment_count: int) -> int:
    """Segments a player fetches to play ``ms_played`` (the one in progress included)."""
    if segment_ms <= 0:
        return segment_count
    return max(1, min(segment_count, math.ceil(max(1, ms_played) / segment_ms)))


# ==================================================================================================
# statistics of a run


@dataclass
class Stats:
    events: int = 0
    plays: int = 0
    completed: int = 0
    skipped: int = 0
    offline_plays: int = 0
    blocked: int = 0  # play refused by the API (rights, not encoded)
    errors: int = 0
    rebuffers: int = 0
    stall_s: float = 0.0
    played_s: float = 0.0
    startup_s: float = 0.0
    segments: int = 0
    prefetches: int = 0
    bytes: int = 0
    status_206: int = 0
    rung_counts: dict[int, int] = field(default_factory=dict)
    per_track: dict[str, int] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)  # call -> seconds

    def latency(self, name: str, seconds: float) -> None:
        self.latencies.setdefault(name, []).append(seconds)

    def summary(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("events", "plays", "completed", "skipped", "offline_plays", "blocked",
                                             "errors", "rebuffers", "segments", "prefetches", "bytes", "status_206")}
        out["stall_s"] = round(self.stall_s, 1)
        out["played_s"] = round(self.played_s, 1)
        out["rebuffer_ratio"] = self.stall_s / (self.stall_s + self.played_s) if self.played_s + self.stall_s else 0.0
        out["mean_startup_s"] = self.startup_s / max(1, self.plays - self.offline_plays)
        out["rungs_kbps"] = {str(k): v for k, v in sorted(self.rung_counts.items())}
        out["latency_ms"] = {name: percentiles(v) for name, v in sorted(self.latencies.items())}
        out["per_track"] = dict(sorted(self.per_track.items(), key=lambda kv: (-kv[1], kv[0])))
        return out


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds (nearest-rank)."""
    if not values:
        return {"n": 0}
    xs = sorted(values)

    def rank(p: float) -> float:
        return xs[min(len(xs) - 1, max(0, math.ceil(p * len(xs)) - 1))] * 1000

    return {"n": len(xs), "p50": round(rank(0.50), 2), "p95": round(rank(0.95), 2), "p99": round(rank(0.99), 2),
            "max": round(xs[-1] * 1000, 2)}


@dataclass
class Manifest:
    track_id: str
    segment_ms: int
    rungs: list[dict]  # ascending bitrate: {"bitrate_kbps", "segments": [url, ...], "segment_count"}
