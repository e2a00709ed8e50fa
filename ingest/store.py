"""The audio object store: encoded renditions as plain files, readable by any process (the CDN).

Layout under ``<PLAYLOG_DATA_DIR>/audio/`` (one directory per rendition, content addressed)::

    audio/<file_id>/index.json       the rendition manifest (below)
    audio/<file_id>/00000.aac        segment 0 (ext: "aac" for AAC in ADTS, "opus" for Ogg Opus)
    audio/<file_id>/00001.aac        segment 1 ...

``file_id`` is the first 32 hex digits of the SHA-256 of the rendition's bytes (all segments
concatenated), so identical encodes share one directory and a directory never changes once
written: readers may cache a manifest forever. ``storage_key`` in ``audio.encoded`` is
``audio/<file_id>`` (the directory, relative to the data dir). A rendition appears atomically:
it is written to a temporary directory and renamed into place, so a reader either sees all of
it or nothing.

``index.json`` (the manifest) holds::

    {"file_id", "codec": "aac"|"opus", "container": "adts"|"ogg", "ext", "content_type",
     "bitrate_kbps", "sample_rate_hz", "channels", "segment_ms", "segment_count",
     "duration_ms", "byte_size", "sha256", "loudness_lufs", "true_peak_dbtp", "master_sha256",
     "segments": [{"index": k, "start_ms", "duration_ms", "byte_size"}, ...]}

Segment formats (why these): every segment must decode on its own (a seek fetches segment k
and nothing else) and the segments concatenated must decode to the whole track.

- AAC: ADTS. Every AAC frame carries its own 7-byte ADTS header, so any run of whole frames is
  a valid stream; segments are cut at frame boundaries of one continuous encode, and their
  concatenation is byte for byte the single ADTS stream of the track.
- Opus: Ogg. Each segment is a complete Ogg Opus stream (its own OpusHead/OpusTags pages and a
  fresh serial number) holding a run of packets of one continuous encode. The concatenation is
  a chained Ogg stream (RFC 3533 section 4, RFC 7845 section 3), which decoders play as one
  track. Only segment 0 carries the encoder's pre-skip; later segments have pre-skip 0 so no
  audio is dropped at a segment boundary.

Fragmented MP4 was not chosen because its media segments need a separate init segment to
decode; MPEG-TS would also work but costs ~5-10 % overhead at low audio bitrates.

Use from the CDN::

    store = AudioStore.from_settings(core.settings.load())
    path = store.segment_path(file_id, k)        # raises SegmentNotFound (a KeyError) -> 404
    manifest = store.rendition_manifest(file_id) # manifest["content_type"] for the header
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

_FILE_ID = re.compile(r"^[0-9a-f]{32}$")
INDEX_NAME = "index.json"


class SegmentNotFound(KeyError):
    """No such rendition or segment (malformed ids included: the CDN answers 404)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "not found"


def file_id_of(data: bytes) -> str:
    """The content address of a rendition: first 32 hex digits of SHA-256 of its bytes."""
    return hashlib.sha256(data).hexdigest()[:32]


class AudioStore:
    """Plain-file store of segmented renditions (see the module docstring for the layout)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @classmethod
    def from_settings(cls, settings: Any) -> AudioStore:
        """The store under ``settings.data_dir / "audio"``."""
        return cls(Path(settings.data_dir) / "audio")

    @classmethod
    def from_data_dir(cls, data_dir: str | Path) -> AudioStore:
        return cls(Path(data_dir) / "audio")

    # -- reading (CDN side) ------------------------------------------------------------------
    def _dir(self, file_id: str) -> Path:
        if not isinstance(file_id, str) or not _FILE_ID.match(file_id):
            raise SegmentNotFound(f"malformed file id {file_id!r}")
        return self.root / file_id

    def has(self, file_id: str) -> bool:
        try:
            return (self._dir(file_id) / INDEX_NAME).is_file()
        except SegmentNotFound:
            return False

    def rendition_manifest(self, file_id: str) -> dict:
        """The rendition's ``index.json`` as a dict; SegmentNotFound if there is none.

        Renditions are immutable, so the result is cached (per store root and file id).
        """
        return dict(_read_manifest(str(self.root), file_id, self._dir(file_id) / INDEX_NAME))

    def segment_path(self, file_id: str, segment_index: int) -> Path:
        """Path of segment ``segment_index`` of ``file_id``; SegmentNotFound if out of range."""
        manifest = self.rendition_manifest(file_id)
        if not isinstance(segment_index, int) or not 0 <= segment_index < manifest["segment_count"]:
            raise SegmentNotFound(
                f"segment {segment_index!r} out of range for {file_id} "
                f"(has {manifest['segment_count']})"
            )
        return self._dir(file_id) / segment_name(segment_index, manifest["ext"])

    def content_type(self, file_id: str) -> str:
        return self.rendition_manifest(file_id)["content_type"]

    def read_all(self, file_id: str) -> bytes:
        """All segments concatenated (the whole rendition)."""
        m = self.rendition_manifest(file_id)
        return b"".join(self.segment_path(file_id, k).read_bytes() for k in range(m["segment_count"]))

    # -- writing (ingest side) ---------------------------------------------------------------
    def put_rendition(self, segments: Sequence[bytes], meta: dict) -> dict:
        """Store segments + manifest atomically; return the manifest (with file_id, sizes, sha256).

        ``meta`` gives codec, container, ext, content_type, bitrate_kbps, sample_rate_hz,
        channels, segment_ms, duration_ms, loudness and per-segment timing ("segments" with
        start_ms/duration_ms); byte sizes and content hashes are filled in here.
        """
        whole = b"".join(segments)
        sha = hashlib.sha256(whole).hexdigest()
        file_id = sha[:32]
        manifest = dict(meta)
        timing = list(meta.get("segments") or [{} for _ in segments])
        if len(timing) != len(segments):
            raise ValueError("segments timing does not match the number of segments")
        manifest.update(
            file_id=file_id,
            sha256=sha,
            segment_count=len(segments),
            byte_size=len(whole),
            segments=[
                {"index": k, **{key: t[key] for key in ("start_ms", "duration_ms") if key in t},
                 "byte_size": len(seg)}
                for k, (seg, t) in enumerate(zip(segments, timing, strict=True))
            ],
        )
        final = self.root / file_id
        if (final / INDEX_NAME).is_file():
            return self.rendition_manifest(file_id)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            for k, seg in enumerate(segments):
                (tmp / segment_name(k, manifest["ext"])).write_bytes(seg)
            (tmp / INDEX_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True))
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / INDEX_NAME).is_file():  # lost a race to an identical writer: fine
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return manifest


def segment_name(index: int, ext: str) -> str:
    return f"{index:05d}.{ext}"


@lru_cache(maxsize=4096)
def _read_manifest(root: str, file_id: str, path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SegmentNotFound(f"no rendition {file_id}") from None
    except (OSError, ValueError) as exc:
        raise SegmentNotFound(f"rendition {file_id} has an unreadable manifest: {exc}") from None
