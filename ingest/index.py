"""The ingest index: which masters were already encoded, and which ISRCs are already known.

A small JSON file at ``<data_dir>/ingest/index.json``::

    {"version": 1,
     "masters": {"<master sha256>": {"duration_ms": int, "files": {"aac-96": "<file_id>", ...},
                                     "features": {"tempo_bpm": float | None, "energy": float}}},
     "isrcs": {"<ISRC>": "<track_id of its first upload>"}}

It is a cache of what the store and the log already say, used (1) to skip encoding master bytes
that were encoded before (content hash) and (2) to tell an alias upload (an ISRC already known
under another track_id) from a new track when reporting. The catalog fold, not this file,
decides canonical ids. One ingest at a time holds ``<data_dir>/ingest/.lock``.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO

from core.errors import PlaylogError


class IngestIndex:
    def __init__(self, data_dir: str | Path):
        self.dir = Path(data_dir) / "ingest"
        self.path = self.dir / "index.json"
        self.masters: dict[str, dict] = {}
        self.isrcs: dict[str, str] = {}
        self._lock: IO[str] | None = None

    def __enter__(self) -> IngestIndex:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.dir / ".lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise PlaylogError(f"another ingest is running on {self.dir.parent} (lock {self.dir / '.lock'})") from None
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.save()
        finally:
            if self._lock is not None:
                fcntl.flock(self._lock, fcntl.LOCK_UN)
                self._lock.close()
                self._lock = None

    def load(self) -> None:
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text())
            self.masters = dict(data.get("masters", {}))
            self.isrcs = dict(data.get("isrcs", {}))
        except (OSError, ValueError, AttributeError) as exc:
            raise PlaylogError(f"the ingest index {self.path} is unreadable ({exc}); move it away to rebuild") from None

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"version": 1, "masters": self.masters, "isrcs": self.isrcs}, sort_keys=True))
        os.replace(tmp, self.path)

    def files_for(self, master_sha: str) -> dict[str, str]:
        return dict(self.masters.get(master_sha, {}).get("files", {}))

    def record_master(self, master_sha: str, duration_ms: int, files: dict[str, str]) -> None:
        entry = self.masters.setdefault(master_sha, {"duration_ms": duration_ms, "files": {}})
        entry["duration_ms"] = duration_ms
        entry["files"].update(files)

    def features_for(self, master_sha: str) -> dict | None:
        """The content features measured from these master bytes (ingest.features), if any yet."""
        got = self.masters.get(master_sha, {}).get("features")
        return dict(got) if isinstance(got, dict) else None

    def record_features(self, master_sha: str, features: dict) -> None:
        self.masters.setdefault(master_sha, {"duration_ms": 0, "files": {}})["features"] = dict(features)

    def register_isrc(self, isrc: str, track_id: str) -> str | None:
        """Remember the ISRC's first track; return that track_id if this upload is an alias of it."""
        first = self.isrcs.setdefault(isrc, track_id)
        return first if first != track_id else None
