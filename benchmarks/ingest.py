"""Benchmarks of the catalog side, for ``playlog bench ingest`` (figures go to BENCHMARKS.md).

- ``bench_ladder``: seconds of master audio taken through the full ladder (5 renditions, each
  encoded, segmented, stored, decoded back and loudness-measured) per wall-clock second, with the
  same process pool the ingest uses. Synthesizing the masters is not timed.
- ``bench_synthetic``: the synthetic catalog generator's tracks/s and events/s (optionally
  including the JSON Lines serialization that ``--emit`` does).

Each returns a flat dict of figures.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import orjson

from ingest.ladder import DEFAULT_SEGMENT_MS, LADDER
from ingest.run import encode_many, sha256_file
from ingest.store import AudioStore
from ingest.synthetic import SyntheticCatalog, render_master, write_wav
from schemas.codec import default_codec


def bench_ladder(
    seconds: float = 30.0,
    masters: int = 2,
    workers: int = 2,
    segment_ms: int = DEFAULT_SEGMENT_MS,
    sample_rate: int = 44_100,
    seed: int = 0,
) -> dict:
    """Encode ``masters`` synthesized masters of ``seconds`` each through the whole ladder."""
    with tempfile.TemporaryDirectory(prefix="playlog-bench-") as tmp:
        root = Path(tmp)
        jobs = []
        for i in range(masters):
            path = root / f"m{i}.wav"
            write_wav(path, render_master(int(seconds * 1000), -14.0 - i, seed + i, sample_rate), sample_rate)
            jobs.append((str(path), sha256_file(path)))
        store = AudioStore(root / "audio")
        began = time.perf_counter()
        out = encode_many(jobs, store, segment_ms=segment_ms, workers=workers, progress=False)
        wall = time.perf_counter() - began
    failed = [v for v in out.values() if isinstance(v, str)]
    if failed:
        raise RuntimeError(f"benchmark encode failed: {failed[0]}")
    audio = seconds * masters
    return {
        "masters": masters,
        "master_seconds": seconds,
        "rungs": len(LADDER),
        "workers": workers,
        "cpu_count": os.cpu_count(),
        "wall_seconds": round(wall, 3),
        "ladder_audio_seconds_per_second": round(audio / wall, 2),
        "rendition_audio_seconds_per_second": round(audio * len(LADDER) / wall, 2),
    }


def bench_synthetic(tracks: int = 200_000, seed: int = 0, serialize: bool = False) -> dict:
    """Generate ``tracks`` tracks; with ``serialize`` also render each event as a JSON line."""
    catalog = SyntheticCatalog(tracks, seed)
    codec = default_codec()
    events = 0
    nbytes = 0
    began = time.perf_counter()
    if serialize:
        dumps, to_json = orjson.dumps, codec.to_json
        for ev in catalog.events():
            nbytes += len(dumps(to_json(ev))) + 1
            events += 1
    else:
        for _ in catalog.events():
            events += 1
    wall = time.perf_counter() - began
    return {
        "tracks": tracks,
        "events": events,
        "serialize": serialize,
        "wall_seconds": round(wall, 3),
        "tracks_per_second": round(tracks / wall),
        "events_per_second": round(events / wall),
        "jsonl_bytes": nbytes,
        "seconds_for_1m_tracks": round(1_000_000 / (tracks / wall), 1),
    }
