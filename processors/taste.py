"""Taste profiles (decayed artist/genre affinities + recent history), co-occurrence and popularity counters.

Input record (a *taste signal*), a plain dict::

    {"event_id": str,          # unique per signal; see signals_from_play_event for derived ids
     "user_id": str, "track_id": str,
     "artist_ids": [str], "genres": [str],
     "kind": "stream" | "complete" | "skip",
     "at": int,                # event time, epoch ms
     "country": str | None}    # for the popularity counter (optional)

Decay. A signal of weight w at time t is worth ``w * 2^(-(now - t) / h)`` at ``now`` (h: the half-life).
With ``k = floor(t / h)`` and ``frac = (t mod h) / h``, a signal's exact integer term is
``round(w * 2^frac * 2^scale_bits) << (k mod B)``, added into the bucket ``g = k // B`` (B =
``bucket_half_lives``) of each of its artists and genres; a bucket stands for ``value * 2^(g*B - scale_bits)``
at time 0 in half-life units. Each term depends only on its signal and integer addition is associative and
commutative, so the stored profile is *identical* whatever order (late, out of order) the same signals
arrive in. Buckets older than ``g_max - horizon_buckets`` (g_max: the newest signal's bucket) are
dropped -- those signals weigh less than 2^-(B*horizon_buckets) of a fresh one -- and a signal that old is
not added at all, which keeps each number to about scale_bits + B + a few bits whatever the time span,
and is also order-independent (what is kept is decided by g_max alone). Scores at a time are derived
on read (:func:`score`); rankings compare exact integers (the decay to any ``now`` is a factor common to
all keys, so the ranking does not depend on ``now``). Numbers are stored as decimal strings (JSON-safe
for every serializer).

Idempotency: the profile remembers the last ``dedupe_window`` signal ids; a redelivered signal inside
the window is ignored. Order independence holds for the profile's content (everything but ``seen``).

Profile state (key ``user_id``)::

    {"user_id", "g_max": int | None,
     "artists": {artist_id: {"<g>": "<int>"}}, "genres": {genre: {"<g>": "<int>"}},
     "history": [[at, event_id, track_id, kind], ...],   # by (at, event_id), the newest history_size
     "signals": int,                                      # distinct signals folded
     "seen": [signal_id, ...]}

Also here: :func:`evolve_listener` + :func:`evolve_pairs` (item co-occurrence: how many listeners
streamed both X and Y) and :func:`evolve_popularity` (streams per (country, track)).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from processors.rules import DAY_MS, MIN_STREAM_MS, PLAY_COMPLETED, PLAY_MS_TYPES, PLAY_SKIPPED

State = dict[str, Any]
Outputs = list[dict[str, Any]]
KINDS = frozenset({"stream", "complete", "skip"})
POSITIVE_KINDS = frozenset({"stream", "complete"})


def _default_weights() -> dict[str, float]:
    return {"stream": 1.0, "complete": 0.5, "skip": -1.0}


@dataclass(frozen=True)
class TasteConfig:
    half_life_ms: int = 30 * DAY_MS
    weights: dict[str, float] = field(default_factory=_default_weights)
    history_size: int = 50
    dedupe_window: int = 1024
    scale_bits: int = 40
    bucket_half_lives: int = 16
    horizon_buckets: int = 4


DEFAULT_CONFIG = TasteConfig()


# --------------------------------------------------------------------------------------------------
# the input record


def signal_error(signal: Mapping[str, Any]) -> str | None:
    """Why a taste signal is malformed, or None."""
    for f in ("event_id", "user_id", "track_id"):
        if not isinstance(signal.get(f), str) or not signal[f]:
            return f"{f} must be a non-empty string"
    if signal.get("kind") not in KINDS:
        return f"unknown kind {signal.get('kind')!r} (expected one of {', '.join(sorted(KINDS))})"
    at = signal.get("at")
    if not isinstance(at, int) or isinstance(at, bool) or at < 0:
        return "at must be a non-negative int of epoch milliseconds"
    for f in ("artist_ids", "genres"):
        value = signal.get(f)
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            return f"{f} must be a list of strings"
    return None


def signals_from_play_event(
    event: Mapping[str, Any], artist_ids: Iterable[str], genres: Iterable[str]
) -> list[dict[str, Any]]:
    """Taste signals from one listening event (``play.progress/skipped/completed``), given the track's
    artists and genres (from the catalog). Signal ids are ``<play_id>:<kind>``, so the many events of
    one play yield each kind once: ``stream`` once ms_played >= 30 s (progress, skipped or completed),
    ``complete`` on ``play.completed``, ``skip`` on ``play.skipped`` before 30 s. ``at`` is the event's
    occurred_at. Other events yield nothing."""
    etype = event.get("type")
    if etype not in PLAY_MS_TYPES:
        return []
    base = {
        "user_id": event["user_id"],
        "track_id": event["track_id"],
        "artist_ids": list(artist_ids),
        "genres": list(genres),
        "at": event["occurred_at"],
        "country": event.get("country"),
    }
    kinds = []
    if event["ms_played"] >= MIN_STREAM_MS:  # royalties.md rule 1
        kinds.append("stream")
    if etype == PLAY_COMPLETED:
        kinds.append("complete")
    if etype == PLAY_SKIPPED and event["ms_played"] < MIN_STREAM_MS:
        kinds.append("skip")
    return [{"event_id": f"{event['play_id']}:{k}", "kind": k, **base} for k in kinds]


# --------------------------------------------------------------------------------------------------
# the profile fold


def new_profile(user_id: str) -> State:
    return {
        "user_id": user_id,
        "g_max": None,
        "artists": {},
        "genres": {},
        "history": [],
        "signals": 0,
        "seen": [],
    }


def term(weight: float, at: int, config: TasteConfig = DEFAULT_CONFIG) -> tuple[int, int]:
    """(bucket g, exact integer value) of a signal of ``weight`` at ``at``."""
    h = config.half_life_ms
    k, rem = divmod(at, h)
    g, offset = divmod(k, config.bucket_half_lives)
    return g, round(weight * 2.0 ** (rem / h) * (1 << config.scale_bits)) << offset


def _add(buckets: Mapping[str, str], g: int, value: int) -> dict[str, str]:
    key = str(g)
    return {**buckets, key: str(int(buckets.get(key, "0")) + value)}


def _prune(table: Mapping[str, Mapping[str, str]], floor: int) -> dict[str, dict[str, str]]:
    out = {}
    for name, buckets in table.items():
        kept = {g: v for g, v in buckets.items() if int(g) >= floor}
        if kept:
            out[name] = kept
    return out


def evolve(
    state: State | None, signal: Mapping[str, Any], config: TasteConfig = DEFAULT_CONFIG
) -> tuple[State, Outputs]:
    """Fold one taste signal into the user's profile. The input state is not mutated.

    Outputs: ``{"kind": "dead_letter", "reason", "event"}`` for a malformed signal, else none (the lead
    publishes ``to_view`` of the new state when it changed)."""
    reason = signal_error(signal)
    user_id = signal.get("user_id")
    if state is None:
        state = new_profile(user_id)  # type: ignore[arg-type]
    if reason is None and state["user_id"] != user_id:
        reason = f"signal for {user_id!r} reached the profile of {state['user_id']!r}"
    if reason is not None:
        return state, [{"kind": "dead_letter", "reason": reason, "event": dict(signal)}]
    sid = signal["event_id"]
    if sid in state["seen"]:
        return state, []
    weight = config.weights.get(signal["kind"], 0.0)
    g, value = term(weight, signal["at"], config)
    g_max = g if state["g_max"] is None else max(state["g_max"], g)
    floor = g_max - config.horizon_buckets
    artists, genres = state["artists"], state["genres"]
    if weight != 0 and g >= floor:
        artists = dict(artists)
        genres = dict(genres)
        for a in set(signal["artist_ids"]):
            artists[a] = _add(artists.get(a, {}), g, value)
        for x in set(signal["genres"]):
            genres[x] = _add(genres.get(x, {}), g, value)
    if g_max != state["g_max"]:
        artists, genres = _prune(artists, floor), _prune(genres, floor)
    entry = [signal["at"], sid, signal["track_id"], signal["kind"]]
    history = list(state["history"])
    bisect.insort(history, entry, key=lambda e: (e[0], e[1]))
    new = {
        "user_id": state["user_id"],
        "g_max": g_max,
        "artists": artists,
        "genres": genres,
        "history": history[-config.history_size :],
        "signals": state["signals"] + 1,
        "seen": [*state["seen"], sid][-config.dedupe_window :],
    }
    return new, []


def _total(profile: Mapping[str, Any], buckets: Mapping[str, str], config: TasteConfig) -> int:
    """The exact affinity in units of the oldest kept bucket (comparable across keys of one profile)."""
    base = profile["g_max"] - config.horizon_buckets
    return sum(int(v) << ((int(g) - base) * config.bucket_half_lives) for g, v in buckets.items())


def score(
    profile: Mapping[str, Any], kind: str, key: str, now_ms: int, config: TasteConfig = DEFAULT_CONFIG
) -> float:
    """The decayed affinity of ``key`` at ``now_ms``; ``kind`` is "artists" or "genres"."""
    buckets = profile[kind].get(key)
    if not buckets:
        return 0.0
    h = config.half_life_ms
    now_k, now_rem = divmod(now_ms, h)
    decay = 2.0 ** (-now_rem / h)
    total = 0.0
    for g, v in buckets.items():
        try:
            total += (
                math.ldexp(float(int(v)), int(g) * config.bucket_half_lives - now_k - config.scale_bits)
                * decay
            )
        except OverflowError:
            total += math.copysign(math.inf, int(v))
    return total


def ranked(
    profile: Mapping[str, Any] | None,
    kind: str,
    *,
    positive_only: bool = True,
    config: TasteConfig = DEFAULT_CONFIG,
) -> list[str]:
    """Keys of ``kind`` ("artists" | "genres") by affinity, highest first, ties by id. Exact: compares
    integers on one scale."""
    if not profile:
        return []
    items = [(_total(profile, b, config), k) for k, b in profile[kind].items()]
    if positive_only:
        items = [(v, k) for v, k in items if v > 0]
    return [k for v, k in sorted(items, key=lambda vk: (-vk[0], vk[1]))]


def top(
    profile: Mapping[str, Any] | None, kind: str, now_ms: int, n: int, config: TasteConfig = DEFAULT_CONFIG
) -> list[tuple[str, float]]:
    """The ``n`` highest positive affinities of ``kind`` with their scores at ``now_ms``."""
    if not profile:
        return []
    return [(k, score(profile, kind, k, now_ms, config)) for k in ranked(profile, kind, config=config)[:n]]


def disliked(
    profile: Mapping[str, Any] | None, kind: str = "artists", config: TasteConfig = DEFAULT_CONFIG
) -> set[str]:
    """Keys whose affinity is negative (skipped more than streamed, decay-weighted)."""
    if not profile:
        return set()
    return {k for k, b in profile[kind].items() if _total(profile, b, config) < 0}


def recent_tracks(profile: Mapping[str, Any] | None, n: int | None = None) -> list[str]:
    """Distinct track ids of the history, most recent first (by event time)."""
    if not profile:
        return []
    out: list[str] = []
    for _at, _sid, track_id, _kind in reversed(profile["history"]):
        if track_id not in out:
            out.append(track_id)
    return out if n is None else out[:n]


def to_view(
    profile: Mapping[str, Any], now_ms: int, n: int = 10, config: TasteConfig = DEFAULT_CONFIG
) -> dict[str, Any]:
    """A JSON-able summary: top artists/genres with scores at ``now_ms``, recent tracks."""
    return {
        "user_id": profile["user_id"],
        "top_artists": [{"id": k, "score": s} for k, s in top(profile, "artists", now_ms, n, config)],
        "top_genres": [{"id": k, "score": s} for k, s in top(profile, "genres", now_ms, n, config)],
        "recent_tracks": recent_tracks(profile),
        "signals": profile["signals"],
    }


# --------------------------------------------------------------------------------------------------
# item co-occurrence: "listeners who streamed X also streamed Y"

LISTENER_CAP = 500
PAIRS_WINDOW = 4096


def evolve_listener(
    state: State | None, signal: Mapping[str, Any], *, cap: int = LISTENER_CAP
) -> tuple[State, Outputs]:
    """Per-user set of streamed tracks (key ``user_id``). The first positive signal of a track emits one
    increment per track already in the set, in both directions::

        {"kind": "cooccurrence", "key": a, "track_id": a, "other": b, "id": "<user>|<a>|<b>"}

    (publish keyed by ``a`` for :func:`evolve_pairs`). A track already in the set emits nothing, so
    duplicates and repeats are no-ops and the pair counts are order-independent while the user has fewer
    than ``cap`` distinct tracks; beyond ``cap`` new tracks are ignored (bounded state)."""
    user_id = signal["user_id"]
    if state is None:
        state = {"user_id": user_id, "tracks": []}
    track = signal["track_id"]
    if signal.get("kind") not in POSITIVE_KINDS or track in state["tracks"] or len(state["tracks"]) >= cap:
        return state, []
    outputs = []
    for other in state["tracks"]:
        for a, b in ((track, other), (other, track)):
            outputs.append(
                {"kind": "cooccurrence", "key": a, "track_id": a, "other": b, "id": f"{user_id}|{a}|{b}"}
            )
    tracks = sorted([*state["tracks"], track])
    return {"user_id": user_id, "tracks": tracks}, outputs


def evolve_pairs(
    state: State | None, increment: Mapping[str, Any], *, window: int = PAIRS_WINDOW
) -> tuple[State, Outputs]:
    """Co-occurrence counts of one track (key ``track_id`` = the increment's ``track_id``):
    ``{"track_id", "counts": {other: listeners}, "seen": [increment ids]}``. Increments are
    deduplicated by id within the last ``window``. No outputs."""
    a = increment["track_id"]
    if state is None:
        state = {"track_id": a, "counts": {}, "seen": []}
    if increment["id"] in state["seen"]:
        return state, []
    other = increment["other"]
    counts = {**state["counts"], other: state["counts"].get(other, 0) + 1}
    return {"track_id": a, "counts": counts, "seen": [*state["seen"], increment["id"]][-window:]}, []


def cooccurring(state: Mapping[str, Any] | None, n: int | None = None) -> list[tuple[str, int]]:
    """(other track, listeners) by count desc, ties by id."""
    if not state:
        return []
    items = sorted(state["counts"].items(), key=lambda kv: (-kv[1], kv[0]))
    return items if n is None else items[:n]


# --------------------------------------------------------------------------------------------------
# popularity per (country, track)

POPULARITY_WINDOW = 1024


def popularity_key(signal: Mapping[str, Any]) -> str | None:
    """``<country>|<track_id>`` for a stream signal with a country; None when it does not count."""
    if signal.get("kind") != "stream" or not signal.get("country"):
        return None
    return f"{signal['country']}|{signal['track_id']}"


def evolve_popularity(
    state: State | None, signal: Mapping[str, Any], *, window: int = POPULARITY_WINDOW
) -> tuple[State | None, Outputs]:
    """Streams of one track in one country (key :func:`popularity_key`):
    ``{"country", "track_id", "streams": int, "seen": [signal ids]}``; other signals leave it as is."""
    if popularity_key(signal) is None:
        return state, []
    if state is None:
        state = {"country": signal["country"], "track_id": signal["track_id"], "streams": 0, "seen": []}
    if signal["event_id"] in state["seen"]:
        return state, []
    return {
        **state,
        "streams": state["streams"] + 1,
        "seen": [*state["seen"], signal["event_id"]][-window:],
    }, []
