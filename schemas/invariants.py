"""Domain invariants an event must hold beyond its Avro types (spec/events.md, "Bad input").

Each check returns a reason string for the first broken invariant, or None.
"""

from __future__ import annotations

import re
from collections.abc import Callable

PRODUCTS = frozenset({"free", "premium"})
CODECS = frozenset({"aac", "opus", "vorbis", "mp3"})
DEVICE_TYPES = frozenset({"phone", "computer", "speaker", "tv", "car", "web"})
DIRECTIONS = frozenset({"next", "previous"})
REPEAT_STATES = frozenset({"track", "context", "off"})
LIBRARY_ITEM_TYPES = frozenset({"track", "album", "artist"})  # what a user can star
FOLLOW_TARGET_TYPES = frozenset({"artist", "user", "playlist"})  # what a user can follow
SHARES_TOTAL = 1_000_000
EVERYWHERE = "*"  # the territory of a takedown that applies in every country

_COUNTRY = re.compile(r"^[A-Z]{2}$")
_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_DATE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")


def _rightsholders(ev: dict) -> str | None:
    shares = ev["rightsholders"]
    if not shares:
        return "rightsholders is empty"
    seen: set[str] = set()
    for s in shares:
        if s["share_ppm"] < 0:
            return f"rightsholder {s['rightsholder_id']!r} has a negative share_ppm"
        if s["rightsholder_id"] in seen:
            return f"rightsholder {s['rightsholder_id']!r} is listed twice"
        seen.add(s["rightsholder_id"])
    total = sum(s["share_ppm"] for s in shares)
    if total != SHARES_TOTAL:
        return f"rightsholder shares sum to {total}, not {SHARES_TOTAL}"
    return None


def _non_negative(*fields: str) -> Callable[[dict], str | None]:
    def check(ev: dict) -> str | None:
        for f in fields:
            if ev[f] < 0:
                return f"{f} is negative ({ev[f]})"
        return None

    return check


def _one_of(field: str, allowed: frozenset[str]) -> Callable[[dict], str | None]:
    def check(ev: dict) -> str | None:
        if ev[field] not in allowed:
            return f"unknown {field} {ev[field]!r} (expected one of {', '.join(sorted(allowed))})"
        return None

    return check


def _matches(field: str, pattern: re.Pattern[str], what: str) -> Callable[[dict], str | None]:
    def check(ev: dict) -> str | None:
        value = ev[field]
        if value is not None and not pattern.match(value):
            return f"{field} {value!r} is not {what}"
        return None

    return check


def _territories(ev: dict) -> str | None:
    if not ev["territories"]:
        return "territories is empty"
    for t in ev["territories"]:
        if t != EVERYWHERE and not _COUNTRY.match(t):
            return f"territory {t!r} is not an ISO 3166-1 alpha-2 code or {EVERYWHERE!r}"
    return None


def _window(ev: dict) -> str | None:
    if ev["valid_from"] is not None and ev["valid_to"] is not None and ev["valid_to"] < ev["valid_from"]:
        return "valid_to is before valid_from"
    return None


def _volume(ev: dict) -> str | None:
    if not 0 <= ev["volume_percent"] <= 100:
        return f"volume_percent {ev['volume_percent']} is outside 0..100"
    return None


_country = _matches("country", _COUNTRY, "an ISO 3166-1 alpha-2 code")
_product = _one_of("product", PRODUCTS)

CHECKS: dict[str, list[Callable[[dict], str | None]]] = {
    "album.ingested": [_matches("release_date", _DATE, "a YYYY-MM-DD date")],
    "track.ingested": [_rightsholders, _non_negative("duration_ms")],
    "audio.encoded": [
        _one_of("codec", CODECS),
        _non_negative("bitrate_kbps", "sample_rate_hz", "segment_ms", "segment_count", "byte_size"),
    ],
    "track.taken_down": [_territories],
    "rights.changed": [_matches("territory", _COUNTRY, "an ISO 3166-1 alpha-2 code"), _window],
    "user.registered": [_country, _product],
    "subscription.changed": [_country, _product],
    "device.registered": [_one_of("device_type", DEVICE_TYPES)],
    "play.started": [_country, _product],
    "play.progress": [_country, _product, _non_negative("ms_played")],
    "play.skipped": [_country, _product, _non_negative("ms_played")],
    "play.completed": [_country, _product, _non_negative("ms_played")],
    "player.play_requested": [_non_negative("offset", "position_ms")],
    "player.paused": [_non_negative("position_ms")],
    "player.seeked": [_non_negative("position_ms")],
    "player.skipped_to": [_one_of("direction", DIRECTIONS)],
    "player.volume_set": [_volume],
    "player.repeat_set": [_one_of("repeat", REPEAT_STATES)],
    "playlist.tracks_added": [lambda ev: _non_negative("position")(ev) if ev["position"] is not None else None],
    "playlist.tracks_moved": [_non_negative("range_start", "range_length", "insert_before")],
    "library.starred": [_one_of("item_type", LIBRARY_ITEM_TYPES)],
    "library.unstarred": [_one_of("item_type", LIBRARY_ITEM_TYPES)],
    "library.followed": [_one_of("target_type", FOLLOW_TARGET_TYPES)],
    "library.unfollowed": [_one_of("target_type", FOLLOW_TARGET_TYPES)],
    "royalty.pool_declared": [
        _country,
        _product,
        _matches("period", _PERIOD, "a YYYY-MM period"),
        _non_negative("amount_micros"),
    ],
}


def invalid_reason(event: dict) -> str | None:
    """The reason an event is refused for an invariant, as bad input lists it (``"<type>: <why>"``),
    or None. The one wording for every reader (schemas/validate.py, ``Codec.from_json``)."""
    reason = broken_invariant(event)
    return f"{event['type']}: {reason}" if reason else None


def broken_invariant(event: dict) -> str | None:
    """The reason the (type-correct) event breaks an invariant, or None if it holds them all."""
    if not event["event_id"]:
        return "event_id is empty"
    for check in CHECKS.get(event["type"], ()):
        reason = check(event)
        if reason:
            return reason
    return None
