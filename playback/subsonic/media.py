"""Which rendition a Subsonic ``stream`` sends, and the whole-file layout of a rendition (pure).

Renditions are stored as segments (ingest/store.py). An AAC rendition is ADTS: every frame carries
its own header, so the segments concatenated are byte for byte the single ADTS stream of the track
(the store's design), and that whole file is what ``stream`` serves, with ``Range``. Opus renditions
concatenate into a chained Ogg stream, which decoders play as one track.

Choice (:func:`choose_rung`): among the rungs the user's tier may stream (the manifest's rule: free
up to 160 kbps, premium all), those of the asked format (``format=opus``/``ogg``: Opus; anything else,
``raw`` and absent included: AAC, the ladder's universal format; when the tier has none of the asked
codec, the other one); then the highest bitrate not above ``maxBitRate`` (kbps, 0 = no limit), or the
lowest one when every rung is above it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from playback.manifest import allowed_rungs

CONTAINERS = {"aac": "adts", "opus": "ogg"}
SUFFIXES = {"aac": "aac", "opus": "opus"}
CONTENT_TYPES = {"aac": "audio/aac", "opus": "audio/ogg"}
OPUS_FORMATS = frozenset({"opus", "ogg", "oga"})


def streamable(rung: dict) -> bool:
    return CONTAINERS.get(rung.get("codec")) == rung.get("container")


def choose_rung(ladder: list[dict], product: str, max_kbps: int = 0, fmt: str | None = None) -> dict | None:
    """The rendition to stream (see the module doc); None when the tier may stream none."""
    allowed = [r for r in allowed_rungs(ladder, product) if streamable(r)]
    want = "opus" if (fmt or "").strip().lower() in OPUS_FORMATS else "aac"
    candidates = [r for r in allowed if r["codec"] == want] or allowed
    if not candidates:
        return None
    candidates = sorted(candidates, key=lambda r: (r["bitrate_kbps"], r["file_id"]))
    if max_kbps > 0:
        within = [r for r in candidates if r["bitrate_kbps"] <= max_kbps]
        return within[-1] if within else candidates[0]
    return candidates[-1]


@dataclass(frozen=True)
class Part:
    path: Path
    start: int  # offset of the segment's first byte in the whole file
    size: int


@dataclass(frozen=True)
class WholeFile:
    """A rendition as one file: its segments in order, with their offsets."""

    file_id: str
    codec: str
    size: int
    etag: str
    parts: tuple[Part, ...]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(self.codec, "application/octet-stream")

    @property
    def suffix(self) -> str:
        return SUFFIXES.get(self.codec, "bin")

    def slices(self, start: int, end: int) -> Iterator[tuple[Path, int, int]]:
        """``(segment path, offset in it, length)`` covering the whole-file bytes ``start..end`` (inclusive)."""
        for part in self.parts:
            lo, hi = max(start, part.start), min(end, part.start + part.size - 1)
            if lo <= hi:
                yield part.path, lo - part.start, hi - lo + 1


def whole_file(manifest: dict, segment_paths: list[Path]) -> WholeFile:
    """The :class:`WholeFile` of a rendition from its ``index.json`` and its segment paths; the segment
    sizes come from the index (files are immutable), else from the files."""
    sizes = []
    for k, path in enumerate(segment_paths):
        segments = manifest.get("segments") or []
        size = segments[k].get("byte_size") if k < len(segments) else None
        sizes.append(int(size) if isinstance(size, int) else path.stat().st_size)
    parts, offset = [], 0
    for path, size in zip(segment_paths, sizes, strict=True):
        parts.append(Part(path, offset, size))
        offset += size
    etag = '"' + str(manifest.get("sha256") or manifest["file_id"])[:32] + '"'
    return WholeFile(manifest["file_id"], manifest.get("codec") or "", offset, etag, tuple(parts))
