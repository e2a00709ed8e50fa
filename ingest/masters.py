"""Masters in a folder, their sidecars, and the catalog events built from them (pure helpers).

A master ``NAME.wav`` (any audio file ffmpeg decodes) may have a sidecar ``NAME.json``::

    {"track_id": "...", "isrc": "SE-ABC-26-00028", "title": "...", "album_id": "...",
     "artist_ids": ["..."], "genres": ["pop"], "explicit": false, "distributor": "...",
     "rightsholders": [{"rightsholder_id": "...", "share_ppm": 1000000}],
     "occurred_at": "2026-05-01T00:00:00Z",                      (optional: event time)
     "artists": [{"artist_id": "...", "name": "...", "genres": [...]}],   (optional; or "artist": {...})
     "album": {"album_id": "...", "title": "...", "artist_ids": [...], "release_date": "YYYY-MM-DD",
               "label": "...", "artwork_uri": null}}                     (optional)

Every field is optional. Missing ones get defaults: the title comes from the file name, ids are
derived from the master's SHA-256 and the ISRC (so re-ingesting the same bytes names the same
track), the ISRC is a content-derived placeholder ``ZZ-xxx-00-nnnnn`` ("ZZ": no registrant),
and the single rightsholder is the distributor's account with the whole 1,000,000 ppm share.
``duration_ms`` is always the measured one.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.timefmt import format_ts, parse_ts
from schemas.codec import EventError, default_codec

AUDIO_EXTENSIONS = frozenset(
    "wav wave bwf rf64 w64 flac aif aiff aifc caf mp3 m4a mp4 aac ogg oga opus wv ape alac wma mka "
    "webm au snd dsf tta".split()
)
TRACK_FIELDS = (
    "track_id", "isrc", "title", "album_id", "artist_ids", "genres", "explicit", "distributor", "rightsholders",
)
SIDECAR_KEYS = frozenset(TRACK_FIELDS) | {"occurred_at", "duration_ms", "artist", "artists", "album"}
DEFAULT_DISTRIBUTOR = "direct-upload"
_B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class SidecarError(ValueError):
    """A sidecar that cannot be used; the message is a one-line reason."""


@dataclass
class Master:
    path: Path
    sidecar: dict = field(default_factory=dict)
    sha256: str = ""


def find_masters(directory: Path) -> tuple[list[Path], list[Path]]:
    """(masters, skipped): audio files in ``directory`` (sorted, not recursive) and other files."""
    masters, skipped = [], []
    for p in sorted(directory.iterdir()):
        if p.name.startswith(".") or not p.is_file() or p.suffix.lower() == ".json":
            continue
        (masters if p.suffix.lower().lstrip(".") in AUDIO_EXTENSIONS else skipped).append(p)
    return masters, skipped


def read_sidecar(master: Path) -> dict:
    """The sidecar of ``master`` (``NAME.json`` beside it) or {}; SidecarError if it is unusable."""
    path = master.with_suffix(".json")
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SidecarError(f"sidecar {path.name} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SidecarError(f"sidecar {path.name} must hold a JSON object")
    unknown = set(data) - SIDECAR_KEYS
    if unknown:
        raise SidecarError(f"sidecar {path.name} has unknown field(s) {', '.join(sorted(unknown))}")
    return data


def title_from_filename(path: Path) -> str:
    """``03_-_My_Song.wav`` -> ``My Song``: underscores to spaces, a leading track number dropped."""
    stem = path.stem.replace("_", " ").strip()
    stem = re.sub(r"^\d{1,3}(\s*[-.)]\s*|\s+)(?=\S)", "", stem).strip() or path.stem
    return re.sub(r"\s+", " ", stem)


def placeholder_isrc(sha256: str) -> str:
    """A content-derived placeholder ISRC for a master uploaded without one (``ZZ`` = unassigned)."""
    n = int(sha256[:16], 16)
    reg = "".join(_B36[(n >> (6 * i)) % 36] for i in range(3))
    return f"ZZ-{reg}-00-{(n >> 20) % 100_000:05d}"


def _event(event_type: str, event_id: str, occurred_at: int, fields: dict) -> dict:
    """Build an event from JSON-form fields and validate it through the codec (SidecarError if bad)."""
    obj: dict[str, Any] = {"type": event_type, "event_id": event_id, "occurred_at": format_ts(occurred_at), **fields}
    try:
        return default_codec().from_json(obj)
    except (EventError, KeyError, TypeError, ValueError) as exc:
        raise SidecarError(f"{event_type}: {exc}") from None


def sidecar_time(sidecar: dict) -> int | None:
    raw = sidecar.get("occurred_at")
    if raw is None:
        return None
    try:
        return parse_ts(raw)
    except ValueError as exc:
        raise SidecarError(f"sidecar occurred_at: {exc}") from None


def track_fields(sidecar: dict, path: Path, sha256: str, duration_ms: int) -> dict:
    """The track.ingested fields from a sidecar plus defaults (see the module docstring)."""
    distributor = sidecar.get("distributor", DEFAULT_DISTRIBUTOR)
    isrc = sidecar.get("isrc", placeholder_isrc(sha256))
    if isinstance(isrc, str):
        isrc = isrc.strip().upper()
    # same bytes and same ISRC -> same default id (re-ingesting is idempotent); another ISRC -> another id
    default_id = "trk-" + hashlib.sha256(f"{sha256}|{isrc}".encode()).hexdigest()[:16]
    fields = {
        "track_id": sidecar.get("track_id", default_id),
        "isrc": isrc,
        "title": sidecar.get("title", title_from_filename(path)),
        "album_id": sidecar.get("album_id", (sidecar.get("album") or {}).get("album_id", f"alb-{sha256[:16]}")),
        "artist_ids": sidecar.get("artist_ids", [a.get("artist_id") for a in _artists(sidecar)]),
        "duration_ms": duration_ms,
        "genres": sidecar.get("genres", []),
        "explicit": sidecar.get("explicit", False),
        "distributor": distributor,
        "rightsholders": sidecar.get(
            "rightsholders", [{"rightsholder_id": f"rh-{distributor}", "share_ppm": 1_000_000}]
        ),
    }
    return fields


def _artists(sidecar: dict) -> list[dict]:
    if "artist" in sidecar and "artists" in sidecar:
        raise SidecarError("sidecar has both 'artist' and 'artists'; use one")
    raw = sidecar.get("artists", [sidecar["artist"]] if "artist" in sidecar else [])
    if not isinstance(raw, list) or not all(isinstance(a, dict) for a in raw):
        raise SidecarError("sidecar 'artists' must be a list of objects")
    return raw


def catalog_events(
    sidecar: dict, path: Path, sha256: str, duration_ms: int, occurred_at: int, new_id: Any
) -> list[dict]:
    """artist.ingested*, album.ingested?, track.ingested for one master (validated).

    ``new_id()`` returns a fresh event id. Raises SidecarError with the reason if invalid.
    """
    t = sidecar_time(sidecar)
    at = occurred_at if t is None else t
    track = _event("track.ingested", new_id(), at, track_fields(sidecar, path, sha256, duration_ms))
    out = []
    for a in _artists(sidecar):
        out.append(_event("artist.ingested", new_id(), at, {"genres": track["genres"], **a}))
    album = sidecar.get("album")
    if album is not None:
        if not isinstance(album, dict):
            raise SidecarError("sidecar 'album' must be an object")
        defaults = {
            "album_id": track["album_id"], "artist_ids": track["artist_ids"],
            "label": track["distributor"], "artwork_uri": None,
        }
        out.append(_event("album.ingested", new_id(), at, {**defaults, **album}))
    out.append(track)
    return out


def audio_event(track_id: str, manifest: dict, event_id: str, occurred_at: int,
                features: dict | None = None) -> dict:
    """The audio.encoded event of one stored rendition (its manifest from ingest.store), with the
    master's content features (ingest.features: ``tempo_bpm``, ``energy``; null when not measured)."""
    fields = {
        "track_id": track_id,
        "file_id": manifest["file_id"],
        "codec": manifest["codec"],
        "container": manifest["container"],
        "bitrate_kbps": manifest["bitrate_kbps"],
        "sample_rate_hz": manifest["sample_rate_hz"],
        "segment_ms": manifest["segment_ms"],
        "segment_count": manifest["segment_count"],
        "byte_size": manifest["byte_size"],
        "storage_key": f"audio/{manifest['file_id']}",
        "loudness_lufs": float(manifest["loudness_lufs"]),
        "true_peak_dbtp": float(manifest["true_peak_dbtp"]),
        "tempo_bpm": (features or {}).get("tempo_bpm"),
        "energy": (features or {}).get("energy"),
    }
    return _event("audio.encoded", event_id, occurred_at, fields)
