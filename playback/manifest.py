"""The stream manifest, built purely: a track's renditions, the listener's tier, a signer and the time
-> the manifest document (spec/api.md ``GET /v1/playback/{track_id}/manifest``).

No aiohttp, no I/O, no clock of its own (``now`` is an argument), so it is tested as a function.

- Rungs: the encode ladder rungs the tier may stream (free: up to :data:`FREE_MAX_KBPS` kbps;
  premium: all), ordered by bitrate (then codec, file id).
- Segment URLs: each rung's segments signed for the CDN (``playback.signing``) with one expiry,
  ``exp = floor(now / 60) * 60 + URL_TTL_S``: on a 60 s grid, so every request in the same minute gets
  the same URLs (cacheable by browsers and the CDN, and by the API per (track, tier, minute)).
  ``expires_at`` is that ``exp``.
- Loudness: ``gain_db`` brings the rendition to :data:`TARGET_LUFS` (``-14 - loudness_lufs`` dB);
  a positive gain is capped so the true peak stays at or below :data:`PEAK_CEILING_DBTP`.
- ``play_id``: every response carries its own play grant (playback/grants.py), added to the
  serialized (cached) manifest by :func:`with_play_id`; the client reports the play's events with it.
"""

from __future__ import annotations

from urllib.parse import quote, quote_plus

import orjson

from core.timefmt import format_ts
from playback.render import uri
from playback.signing import Signer, segment_path
from processors.rules import FREE_MAX_KBPS

TARGET_LUFS = -14.0
PEAK_CEILING_DBTP = -1.0
URL_TTL_S = 3600
EXP_GRID_S = 60


def gain_db(loudness_lufs: float, true_peak_dbtp: float) -> float:
    """Loudness-normalization gain to -14 LUFS; a boost never pushes the true peak above -1 dBTP."""
    gain = TARGET_LUFS - loudness_lufs
    if gain > 0:
        gain = max(0.0, min(gain, PEAK_CEILING_DBTP - true_peak_dbtp))
    return round(gain, 2)


def window_start(now: float) -> int:
    """The start of the 60 s signing window holding ``now`` (Unix s); URLs expire ``URL_TTL_S`` after it."""
    return int(now) // EXP_GRID_S * EXP_GRID_S


def allowed_rungs(ladder: list[dict], product: str) -> list[dict]:
    """The renditions the tier may stream (free: <= 160 kbps, premium: all), in manifest order."""
    allowed = [r for r in ladder if product == "premium" or r["bitrate_kbps"] <= FREE_MAX_KBPS]
    return sorted(allowed, key=lambda r: (r["bitrate_kbps"], r["codec"], r["file_id"]))


def segment_urls(signer: Signer, cdn_base: str, file_id: str, count: int, exp: int,
                 territory: str | None = None) -> list[str]:
    """The same URLs as ``Signer.sign_segment_url`` (``exp`` fixed), without urlencode per URL; with
    ``territory`` (the listener's country) signed in, so the CDN can apply a takedown there only."""
    kid = signer.signing_kid
    prefix = f"{cdn_base.rstrip('/')}/audio/{quote(file_id, safe='')}/"
    ter = f"&ter={territory}" if territory else ""
    tail = f"?exp={exp}&kid={quote_plus(kid)}{ter}&sig="
    out = []
    for k in range(count):
        sig = signer.sign_path(segment_path(file_id, k), exp, territory=territory)["sig"]
        out.append(f"{prefix}{k}{tail}{sig}")
    return out


def build_manifest(ladder: list[dict], product: str, signer: Signer, now: float, *, cdn_base: str,
                   track_id: str, canonical_id: str | None = None, territory: str | None = None) -> dict:
    """The manifest of the logical track ``canonical_id`` (default ``track_id``) as requested by
    ``track_id`` (an alias id adds ``linked_from``), for ``product`` at time ``now`` (Unix s)."""
    canon = track_id if canonical_id is None else canonical_id
    exp = window_start(now) + URL_TTL_S
    rungs = []
    for r in allowed_rungs(ladder, product):
        rungs.append({
            "file_id": r["file_id"], "codec": r["codec"], "container": r["container"],
            "bitrate_kbps": r["bitrate_kbps"], "sample_rate_hz": r["sample_rate_hz"],
            "segment_ms": r["segment_ms"], "segment_count": r["segment_count"], "byte_size": r["byte_size"],
            "loudness_lufs": r["loudness_lufs"], "true_peak_dbtp": r["true_peak_dbtp"],
            "gain_db": gain_db(r["loudness_lufs"], r["true_peak_dbtp"]),
            "segments": segment_urls(signer, cdn_base, r["file_id"], r["segment_count"], exp, territory),
        })
    out = {"track_id": canon, "uri": uri("track", canon), "product": product, "target_lufs": TARGET_LUFS,
           "expires_at": exp, "expires_at_iso": format_ts(exp * 1000), "rungs": rungs}
    if track_id != canon:
        out["linked_from"] = {"id": track_id, "uri": uri("track", track_id)}
    return out


def with_play_id(body: bytes, play_id: str) -> bytes:
    """A serialized manifest (a JSON object) with ``"play_id"`` added as its last member."""
    if not body.endswith(b"}") or body == b"{}":
        raise ValueError("expected a serialized, non-empty manifest object")
    return body[:-1] + b',"play_id":' + orjson.dumps(play_id) + b"}"
