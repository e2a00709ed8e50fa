"""``playlog ingest DIR`` as a library: masters -> ladder (process pool) -> store -> catalog events.

The order of work: read sidecars and hash every master; validate the catalog events (so a bad
sidecar fails before any encoding); encode every (master, rung) not already in the store on a
process pool with a progress bar; then, master by master in file-name order, emit
``artist.ingested``/``album.ingested`` (when the sidecar has them), ``track.ingested`` and one
``audio.encoded`` per rung. A master that fails is reported with its reason and emits nothing;
the others go on.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ingest.features import analyze_master
from ingest.index import IngestIndex
from ingest.ladder import DEFAULT_SEGMENT_MS, LADDER, MasterError, encode_rung
from ingest.masters import SidecarError, audio_event, catalog_events, find_masters, read_sidecar
from ingest.store import AudioStore
from topics.emit import EventSink

log = logging.getLogger(__name__)


@dataclass
class MasterResult:
    path: Path
    track_id: str | None = None
    isrc: str | None = None
    alias_of: str | None = None
    reused: bool = False  # renditions came from the store (same master bytes seen before)
    duration_ms: int = 0
    error: str | None = None
    file_ids: dict[str, str] = field(default_factory=dict)


@dataclass
class IngestReport:
    results: list[MasterResult]
    skipped: list[Path]
    renditions_encoded: int
    audio_seconds_encoded: float  # master seconds x rungs actually encoded in this run
    wall_seconds: float
    events: int

    @property
    def failed(self) -> list[MasterResult]:
        return [r for r in self.results if r.error]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, MasterError | SidecarError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def encode_many(
    jobs: Iterable[tuple[str, str]],
    store: AudioStore,
    *,
    segment_ms: int = DEFAULT_SEGMENT_MS,
    workers: int = 2,
    progress: bool = True,
    rungs: Iterable[str] | None = None,
) -> dict[str, dict[str, dict] | str]:
    """Encode every rung of every (path, master_sha256) job; sha -> {rung: manifest} or error reason.

    ``workers`` > 1 uses a process pool (spawned, so it is safe beside a Kafka producer's threads).
    """
    rung_names = list(rungs) if rungs is not None else [r.name for r in LADDER]
    tasks = [(path, sha, rung) for path, sha in jobs for rung in rung_names]
    out: dict[str, dict[str, dict] | str] = {}
    bar = tqdm(total=len(tasks), unit="rendition", desc="encoding", file=sys.stderr,
               disable=not progress or not tasks)

    def done(sha: str, rung: str, fn: Callable[[], dict]) -> None:
        try:
            manifest = fn()
        except Exception as exc:  # one bad master must not stop the others
            if not isinstance(out.get(sha), str):
                out[sha] = _reason(exc)
        else:
            current = out.setdefault(sha, {})
            if isinstance(current, dict):
                current[rung] = manifest
        bar.update(1)

    try:
        if workers <= 1 or len(tasks) <= 1:
            for path, sha, rung in tasks:
                done(sha, rung, lambda p=path, s=sha, r=rung: encode_rung(p, r, segment_ms, str(store.root), s))
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures: dict[Future, tuple[str, str]] = {
                    pool.submit(encode_rung, path, rung, segment_ms, str(store.root), sha): (sha, rung)
                    for path, sha, rung in tasks
                }
                for fut in as_completed(futures):
                    sha, rung = futures[fut]
                    done(sha, rung, fut.result)
    finally:
        bar.close()
    return out


def analyze_many(jobs: Iterable[tuple[str, str]], *, workers: int = 2) -> dict[str, dict | None]:
    """Content features (ingest.features) of every (path, master_sha256) job: sha -> features, or None
    when the analysis failed (logged; the master's renditions are still good, its events say null)."""
    jobs = list(jobs)
    out: dict[str, dict | None] = {}

    def done(path: str, sha: str, fn: Callable[[], dict]) -> None:
        try:
            out[sha] = fn()
        except Exception as exc:  # features are extras: a failure must not fail the master
            log.warning("%s: content features not measured: %s", Path(path).name, _reason(exc))
            out[sha] = None

    if workers <= 1 or len(jobs) <= 1:
        for path, sha in jobs:
            done(path, sha, lambda p=path: analyze_master(p))
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {pool.submit(analyze_master, path): (path, sha) for path, sha in jobs}
            for fut in as_completed(futures):
                path, sha = futures[fut]
                done(path, sha, fut.result)
    return out


def ingest_directory(
    directory: str | Path,
    data_dir: str | Path,
    sink: EventSink,
    *,
    occurred_at: int,
    segment_ms: int = DEFAULT_SEGMENT_MS,
    workers: int = 2,
    progress: bool = True,
    new_id: Callable[[], str] | None = None,
) -> IngestReport:
    """Ingest every master in ``directory`` (see the module docstring); events go to ``sink``.

    ``occurred_at`` (epoch ms) is the event time of the first master; the n-th master (in file
    name order) gets occurred_at + n, so the earliest upload of an ISRC is well defined.
    """
    started = time.perf_counter()
    new_id = new_id or (lambda: str(uuid.uuid4()))
    directory = Path(directory)
    store = AudioStore.from_data_dir(data_dir)
    paths, skipped = find_masters(directory)
    for p in skipped:
        log.warning("skipping %s: not an audio file extension", p.name)
    results = [MasterResult(p) for p in paths]
    sidecars: dict[Path, dict] = {}
    shas: dict[Path, str] = {}
    for r in results:
        try:
            sidecars[r.path] = read_sidecar(r.path)
            shas[r.path] = sha256_file(r.path)
            catalog_events(sidecars[r.path], r.path, shas[r.path], 0, occurred_at, new_id)  # validate early
        except (SidecarError, OSError) as exc:
            r.error = _reason(exc)

    events = encoded = 0
    audio_seconds = 0.0
    with IngestIndex(data_dir) as index:
        # which master bytes still need encoding (content hash; each distinct master once)
        todo: dict[str, str] = {}
        for r in results:
            if r.error:
                continue
            sha = shas[r.path]
            have = index.files_for(sha)
            if sha in todo or all(rung.name in have and store.has(have[rung.name]) for rung in LADDER):
                r.reused = True
            else:
                todo[sha] = str(r.path)
        outcome = encode_many(
            [(p, s) for s, p in todo.items()], store, segment_ms=segment_ms, workers=workers, progress=progress
        )
        for sha, res in outcome.items():
            if isinstance(res, dict):
                duration = next(iter(res.values()))["master"]["duration_ms"]
                index.record_master(sha, duration, {rung: m["file_id"] for rung, m in res.items()})
                encoded += len(res)
                audio_seconds += duration / 1000 * len(res)
        # content features of every master encoded (now or before) that has none measured yet
        unmeasured = {shas[r.path]: str(r.path) for r in results
                      if not r.error and shas[r.path] in index.masters and index.features_for(shas[r.path]) is None}
        for sha, feats in analyze_many([(p, s) for s, p in unmeasured.items()], workers=workers).items():
            if feats is not None:
                index.record_features(sha, feats)
        index.save()

        for n, r in enumerate(results):
            if r.error:
                continue
            sha = shas[r.path]
            res = outcome.get(sha)
            if isinstance(res, str):
                r.error = res
                continue
            files = index.files_for(sha)
            r.file_ids = {rung.name: files[rung.name] for rung in LADDER}
            r.duration_ms = index.masters[sha]["duration_ms"]
            at = occurred_at + n
            try:
                cat = catalog_events(sidecars[r.path], r.path, sha, r.duration_ms, at, new_id)
            except SidecarError as exc:
                r.error = str(exc)
                continue
            track = cat[-1]
            r.track_id, r.isrc = track["track_id"], track["isrc"]
            r.alias_of = index.register_isrc(track["isrc"], track["track_id"])
            if r.alias_of:
                log.info("%s: ISRC %s is already known as %s: alias upload", r.path.name, r.isrc, r.alias_of)
            features = index.features_for(sha)
            audio = [
                audio_event(track["track_id"], store.rendition_manifest(r.file_ids[rung.name]), new_id(),
                            track["occurred_at"], features)
                for rung in LADDER
            ]
            for ev in [*cat, *audio]:
                sink.emit(ev)
                events += 1
    for r in results:
        if r.error:
            log.info("%s failed: %s", r.path.name, r.error)
    return IngestReport(results, skipped, encoded, audio_seconds, time.perf_counter() - started, events)
