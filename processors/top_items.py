"""Recently played and top items (Spotify's ``/me/player/recently-played`` and ``/me/top/{type}``),
derived from what the personalization read interface gives: a user's recent listening history and
taste profile. Pure: the caller passes ``now_ms``.

**Plays.** A history entry is a taste signal (:mod:`processors.taste`): ``{"track_id", "at", "kind",
"event_id"}``, ``kind`` stream (>= 30 s played) | complete | skip. One playback yields up to two
entries whose ids are ``<play_id>:<kind>``; :func:`plays` folds them back into one play per
``play_id`` (an id without a ``:<kind>`` suffix is its own play), keeps plays that counted (a stream
or a completion; a skip before 30 s is not "played", as on Spotify), and stamps each with its latest
entry's time (``played_at``). Newest first, ties by play id.

**Time ranges** (:data:`WINDOWS_MS`): ``short_term`` the last 4 weeks, ``medium_term`` the last
6 months (182 days), ``long_term`` the last year (365 days), Spotify's own descriptions.

- Top tracks (:func:`top_tracks`): the plays within the window, counted per track; most plays
  first, then the most recently played, then track id. The history holds the newest
  ``TasteConfig.history_size`` signals only, so top tracks rank the recent listening the replica keeps,
  whatever the range (a wider range can only add older plays of that bounded history).
- Top artists (:func:`top_artists`): the taste profile's decayed artist affinities
  (``taste.ranked``: exact, positive only), keeping an artist whose affinity now (``taste.score``) is
  at least what one stream at the window's edge is worth now, ``2^(-window / half_life)`` (the
  profile's half-life, 30 days): a decay horizon. One stream 20 days ago counts in ``short_term``, one
  40 days ago does not (it does in ``medium_term``); heavy listening fades out later than light
  listening (four streams 60 days ago still weigh two streams 4 weeks ago), since the profile keeps
  decayed sums, not per-play times.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from processors import taste
from processors.rules import DAY_MS

WINDOWS_MS: dict[str, int] = {"short_term": 28 * DAY_MS, "medium_term": 182 * DAY_MS, "long_term": 365 * DAY_MS}
TIME_RANGES = tuple(WINDOWS_MS)
_PLAYED_KINDS = frozenset({"stream", "complete"})
_KIND_SUFFIXES = tuple(f":{k}" for k in taste.KINDS)


def play_key(event_id: str) -> str:
    """The playback a history entry belongs to: its id without the ``:<kind>`` suffix."""
    for suffix in _KIND_SUFFIXES:
        if event_id.endswith(suffix):
            return event_id[: -len(suffix)]
    return event_id


def plays(history: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One ``{"play", "track_id", "played_at"}`` per playback that counted, newest first (see module)."""
    by_play: dict[str, dict[str, Any]] = {}
    for entry in history:
        key = play_key(entry["event_id"])
        if entry["kind"] not in _PLAYED_KINDS:
            continue
        cur = by_play.get(key)
        if cur is None or entry["at"] > cur["played_at"]:
            by_play[key] = {"play": key, "track_id": entry["track_id"], "played_at": entry["at"]}
    return sorted(by_play.values(), key=lambda p: (-p["played_at"], p["play"]))


def cursor_page(
    items: list[dict[str, Any]], limit: int, *, after: int | None = None, before: int | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """A page of ``items`` (newest first, by ``played_at``) and whether more lie beyond it.

    ``before``: the ``limit`` newest plays strictly before it (none: the newest); ``after``: the
    ``limit`` plays strictly after it that are closest to it (the page next to the cursor), still
    newest first. More: plays older than the page (``before`` paging) or newer (``after`` paging)."""
    if after is not None:
        newer = [p for p in items if p["played_at"] > after]
        page = newer[-limit:] if limit else []
        return page, len(newer) > len(page)
    older = [p for p in items if before is None or p["played_at"] < before]
    page = older[:limit]
    return page, len(older) > len(page)


def window_ms(time_range: str) -> int:
    """The window of a Spotify ``time_range`` (ValueError for another value)."""
    try:
        return WINDOWS_MS[time_range]
    except KeyError:
        raise ValueError(f"time_range must be one of {', '.join(TIME_RANGES)}") from None


def top_tracks(history: Iterable[Mapping[str, Any]], now_ms: int, time_range: str) -> list[str]:
    """Track ids by plays within the window, then latest play, then id (see the module docstring)."""
    since = now_ms - window_ms(time_range)
    counts: dict[str, int] = {}
    latest: dict[str, int] = {}
    for p in plays(history):
        if p["played_at"] < since:
            continue
        t = p["track_id"]
        counts[t] = counts.get(t, 0) + 1
        latest[t] = max(latest.get(t, p["played_at"]), p["played_at"])
    return sorted(counts, key=lambda t: (-counts[t], -latest[t], t))


def top_artists(
    profile: Mapping[str, Any] | None, now_ms: int, time_range: str, config: taste.TasteConfig = taste.DEFAULT_CONFIG
) -> list[str]:
    """Artist ids by the profile's affinity, those above the window's threshold (module docstring)."""
    if not profile:
        return []
    threshold = config.weights["stream"] * 2.0 ** (-window_ms(time_range) / config.half_life_ms)
    return [a for a in taste.ranked(profile, "artists", config=config)
            if taste.score(profile, "artists", a, now_ms, config) >= threshold]
