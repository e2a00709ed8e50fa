"""The CDN host: signed segment URLs served from the audio object store through an edge cache.

``GET|HEAD /audio/{file_id}/{segment}?exp=UNIX&kid=KEYID&sig=SIG`` (see :mod:`playback.signing`).

Order of checks: signature first (403 for missing, malformed, unknown-kid, tampered, other-path or
expired URLs), then the store (404 for an unknown file or segment), then conditionals and ``Range``.

Range handling (RFC 9110 section 14):
- one ``bytes=`` range (``a-b``, ``a-``, suffix ``-n``): 206 with ``Content-Range: bytes a-b/SIZE``;
  an end past the last byte is clamped; a suffix longer than the object gives the whole object;
- unsatisfiable (first byte >= SIZE, ``-0``, any range of an empty object): 416 with
  ``Content-Range: bytes */SIZE``;
- a syntactically invalid header or another unit is ignored (full 200), as the RFC allows;
- **multiple ranges** (``bytes=0-1,5-9``) are answered with the full object (200) rather than a
  ``multipart/byteranges`` body: allowed by the RFC, and audio players only ever ask for one range;
- ``If-Range`` with a different ETag ignores ``Range``; ``If-None-Match`` matching the ETag -> 304.

HEAD answers the same status and headers with no body. Every response carries ``Accept-Ranges:
bytes``; successful ones an ETag (strong, from the content), a ``Content-Type`` from the rendition's
codec/container and ``Cache-Control: public, max-age=<seconds until the URL expires>, immutable``.
Errors are JSON ``{"error": {"status": N, "message": "..."}}`` with ``Cache-Control: no-store``.

Edge cache: whole segments are kept in a byte-bounded LRU (:mod:`playback.edge_cache`,
PLAYLOG_CDN_CACHE_BYTES, default 256 MiB); responses are zero-copy ``memoryview`` slices of the
cached bytes. A miss reads the file once in a worker thread (concurrent misses for the same segment
share one read) and admits it; an object too large to be cached is read with ``pread`` for just
the requested range. ``/metrics`` (Prometheus text) reports requests by status, bytes served, cache
hits/misses/evictions, the hit ratio and a latency histogram; ``/healthz`` says ok.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from playback.edge_cache import EdgeCache, Entry
from playback.signing import Signer

log = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
_FILE_ID_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_SEGMENT_RE = re.compile(r"[0-9]{1,9}")

# ---------------------------------------------------------------------------------------------
# Range parsing (pure)


class ByteRange(NamedTuple):
    """Inclusive byte positions ``start..end`` of an object."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


UNSATISFIABLE = ByteRange(-1, -1)
_RANGE_SPEC_RE = re.compile(r"([0-9]{0,19})-([0-9]{0,19})")


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The byte range a ``Range`` header asks of an object of ``size`` bytes.

    Returns None to serve the whole object (no header, an invalid header, another unit, or several
    ranges), :data:`UNSATISFIABLE` for a 416, else the clamped inclusive :class:`ByteRange`.
    """
    if not header:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = [s.strip() for s in spec.split(",") if s.strip()]
    if len(specs) != 1:
        return None  # none (invalid) or several (answered with the full object, see module doc)
    m = _RANGE_SPEC_RE.fullmatch(specs[0])
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return None
    if first == "":  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return UNSATISFIABLE
        return ByteRange(max(0, size - n), size - 1)
    start = int(first)
    end = int(last) if last != "" else size - 1
    if last != "" and end < start:
        return None  # invalid byte-range-spec: the header is ignored
    if start >= size:
        return UNSATISFIABLE
    return ByteRange(start, min(end, size - 1))


def etag_matches(header: str, etag: str) -> bool:
    """Weak comparison of an ``If-None-Match`` list with our ETag (``*`` matches anything)."""
    bare = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == bare:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# The object store lookup (kept small so it is easy to align with ingest/store.py)

_CONTENT_TYPES = {
    # container or file extension
    "aac": "audio/aac",
    "adts": "audio/aac",
    "m4a": "audio/mp4",
    "mp4": "audio/mp4",
    "m4s": "audio/mp4",
    "fmp4": "audio/mp4",
    "ogg": "audio/ogg",
    "oga": "audio/ogg",
    "opus": "audio/ogg",
    "vorbis": "audio/ogg",
    "webm": "audio/webm",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "wav": "audio/wav",
}


def content_type_for(meta: dict, ext: str) -> str:
    """index.json's ``content_type`` if given, else from its container/codec, else from the extension."""
    explicit = meta.get("content_type")
    if isinstance(explicit, str) and "/" in explicit:
        return explicit
    for name in (meta.get("container"), meta.get("codec"), ext):
        if isinstance(name, str) and name.lower() in _CONTENT_TYPES:
            return _CONTENT_TYPES[name.lower()]
    return "application/octet-stream"


@dataclass(frozen=True)
class SegmentLocation:
    path: Path
    content_type: str


class SegmentStore:
    """Finds segment files in ``<data_dir>/audio/<file_id>/<index:05d>.<ext>`` (+ ``index.json``).

    ``index.json`` (codec, container, bitrate, segment_ms, segment_count, content_type, ext) bounds
    the index and names the content type; without it the file is found by its ``<index:05d>.*`` name.
    Blocking (file system): the CDN calls it from a worker thread.
    """

    def __init__(self, data_dir: Path):
        self.root = Path(data_dir) / "audio"
        self._meta: dict[str, dict] = {}

    def _index(self, file_id: str) -> dict:
        meta = self._meta.get(file_id)
        if meta is not None:
            return meta
        index_path = self.root / file_id / "index.json"
        try:
            meta = json.loads(index_path.read_text())
            if not isinstance(meta, dict):
                raise ValueError("not an object")
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", index_path, exc)
            return {}
        if len(self._meta) > 65536:
            self._meta.clear()
        self._meta[file_id] = meta
        return meta

    def locate(self, file_id: str, index: int) -> SegmentLocation | None:
        if not _FILE_ID_RE.fullmatch(file_id) or ".." in file_id:
            return None
        meta = self._index(file_id)
        count = meta.get("segment_count")
        if isinstance(count, int) and not 0 <= index < count:
            return None
        directory = self.root / file_id
        ext = meta.get("ext")
        if isinstance(ext, str) and ext.isalnum():
            path = directory / f"{index:05d}.{ext}"
            if path.is_file():
                return SegmentLocation(path, content_type_for(meta, ext))
        for path in directory.glob(f"{index:05d}.*"):
            if path.is_file() and path.suffix != ".json":
                return SegmentLocation(path, content_type_for(meta, path.suffix.lstrip(".")))
        return None


# ---------------------------------------------------------------------------------------------
# Metrics


class _CdnCollector(Collector):
    """Exports the hot-path counters (plain ints) at scrape time, so requests pay nothing for them."""

    def __init__(self, state: CdnState):
        self.state = state

    def collect(self):
        st = self.state
        requests = CounterMetricFamily("playlog_cdn_requests", "CDN requests by HTTP status", labels=["status"])
        for status, count in sorted(st.requests_by_status.items()):
            requests.add_metric([str(status)], count)
        yield requests
        yield CounterMetricFamily("playlog_cdn_bytes_served", "Segment body bytes sent", value=st.bytes_served)
        cache = st.cache
        yield CounterMetricFamily("playlog_cdn_cache_hits", "Edge cache hits", value=cache.hits)
        yield CounterMetricFamily("playlog_cdn_cache_misses", "Edge cache misses", value=cache.misses)
        yield CounterMetricFamily("playlog_cdn_cache_evictions", "Edge cache evictions", value=cache.evictions)
        yield GaugeMetricFamily("playlog_cdn_cache_hit_ratio", "Edge cache hits / lookups", value=cache.hit_ratio)
        yield GaugeMetricFamily("playlog_cdn_cache_bytes", "Bytes held by the edge cache", value=cache.size_bytes)
        yield GaugeMetricFamily("playlog_cdn_cache_entries", "Segments held by the edge cache", value=len(cache))
        yield GaugeMetricFamily(
            "playlog_cdn_cache_budget_bytes", "Edge cache budget", value=cache.budget_bytes
        )


# ---------------------------------------------------------------------------------------------
# The server


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    h = {"Content-Type": "application/json", "Cache-Control": "no-store", "Accept-Ranges": "bytes"}
    if headers:
        h.update(headers)
    return web.Response(
        body=orjson.dumps({"error": {"status": status, "message": message}}), status=status, headers=h
    )


class _Uncached(NamedTuple):
    location: SegmentLocation
    size: int
    etag: str


class CdnState:
    """Everything a CDN app instance holds: keys, store, cache, counters."""

    def __init__(
        self,
        signer: Signer,
        store: SegmentStore,
        cache: EdgeCache,
        clock: Callable[[], float] = time.time,
    ):
        self.signer = signer
        self.store = store
        self.cache = cache
        self.clock = clock
        self.requests_by_status: dict[int, int] = {}
        self.bytes_served = 0
        self._inflight: dict[tuple[str, int], asyncio.Future] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_CdnCollector(self))
        self.latency = Histogram(
            "playlog_cdn_request_seconds",
            "CDN handler latency (until the response is handed to the transport)",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )

    # -- store access -------------------------------------------------------------------------

    def _load(self, file_id: str, index: int) -> Entry | _Uncached | None:
        """Blocking: find the segment, read it if it can be cached."""
        location = self.store.locate(file_id, index)
        if location is None:
            return None
        try:
            st = location.path.stat()
            if not self.cache.admits(st.st_size):
                etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}-{st.st_ino:x}"'
                return _Uncached(location, st.st_size, etag)
            data = location.path.read_bytes()
        except OSError as exc:
            log.warning("cannot read %s: %s", location.path, exc)
            return None
        etag = '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'
        return Entry(data, etag, location.content_type)

    async def fetch(self, file_id: str, index: int) -> Entry | _Uncached | None:
        key = (file_id, index)
        entry = self.cache.get(key)
        if entry is not None:
            return entry
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, self._load, file_id, index)
        self._inflight[key] = future
        try:
            result = await future
        finally:
            self._inflight.pop(key, None)
        if isinstance(result, Entry):
            self.cache.put(key, result)
        return result

    # -- handlers -----------------------------------------------------------------------------

    def _count(self, status: int, nbytes: int) -> None:
        self.requests_by_status[status] = self.requests_by_status.get(status, 0) + 1
        self.bytes_served += nbytes

    async def audio(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        nbytes = 0
        try:
            response = await self._audio(request)
            status = response.status
            if request.method != "HEAD" and status in (200, 206):
                nbytes = response.content_length or 0
            return response
        except Exception:
            log.exception("CDN request failed: %s", request.path_qs)
            return _error(500, "internal error")
        finally:
            self._count(status, nbytes)
            self.latency.observe(time.perf_counter() - started)

    async def _audio(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        now = self.clock()
        verdict = self.signer.verify(request.path, query.get("exp"), query.get("kid"), query.get("sig"), now=now)
        if not verdict.ok:
            return _error(403, f"forbidden: {verdict.reason}")
        info = request.match_info
        file_id, segment = info["file_id"], info["segment"]
        if not _SEGMENT_RE.fullmatch(segment) or not _FILE_ID_RE.fullmatch(file_id):
            return _error(404, "no such segment")
        found = await self.fetch(file_id, int(segment))
        if found is None:
            return _error(404, f"no such segment: {file_id}/{segment}")

        if isinstance(found, Entry):
            size, etag, ctype = len(found.data), found.etag, found.content_type
        else:
            size, etag, ctype = found.size, found.etag, found.location.content_type
        max_age = max(0, int(query["exp"]) - int(now))
        headers = {
            "Content-Type": ctype,
            "Accept-Ranges": "bytes",
            "ETag": etag,
            "Cache-Control": f"public, max-age={max_age}, immutable",
        }
        req_headers = request.headers
        inm = req_headers.get("If-None-Match")
        if inm is not None and etag_matches(inm, etag):
            return web.Response(status=304, headers=headers)

        rng_header = req_headers.get("Range")
        if rng_header is not None:
            if_range = req_headers.get("If-Range")
            if if_range is not None and if_range.strip() != etag:
                rng_header = None
        rng = parse_range(rng_header, size)
        if rng is UNSATISFIABLE:
            return _error(416, "range not satisfiable", {"Content-Range": f"bytes */{size}"})

        if rng is None:
            start, end, status = 0, size - 1, 200
        else:
            start, end, status = rng.start, rng.end, 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"

        if request.method == "HEAD":
            headers["Content-Length"] = str(end - start + 1)
            return web.Response(status=status, headers=headers)
        if isinstance(found, Entry):
            data = found.data
            body = data if status == 200 else memoryview(data)[start : end + 1]
        else:
            body = await asyncio.get_running_loop().run_in_executor(
                None, _pread, found.location.path, start, end - start + 1
            )
        return web.Response(body=body, status=status, headers=headers)

    async def metrics(self, request: web.Request) -> web.Response:
        self._count(200, 0)
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(self, request: web.Request) -> web.Response:
        self._count(200, 0)
        body = {"status": "ok", "cache_entries": len(self.cache), "cache_hit_ratio": self.cache.hit_ratio}
        return web.Response(body=orjson.dumps(body), headers={"Content-Type": "application/json"})

    async def fallback(self, request: web.Request) -> web.Response:
        if request.path.startswith("/audio/") and request.method not in ("GET", "HEAD"):
            self._count(405, 0)
            return _error(405, f"method {request.method} not allowed", {"Allow": "GET, HEAD"})
        self._count(404, 0)
        return _error(404, "not found")


def _pread(path: Path, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while length > 0:
            chunk = os.pread(fd, min(length, 8 << 20), offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def cache_bytes_from_env() -> int:
    raw = os.environ.get("PLAYLOG_CDN_CACHE_BYTES", "")
    if raw == "":
        return DEFAULT_CACHE_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"PLAYLOG_CDN_CACHE_BYTES must be an integer number of bytes, got {raw!r}") from None
    if value < 0:
        raise ValueError("PLAYLOG_CDN_CACHE_BYTES must be >= 0")
    return value


def build_app(
    *,
    signer: Signer,
    data_dir: Path,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The CDN aiohttp application (``app["cdn"]`` is its :class:`CdnState`)."""
    state = CdnState(signer, SegmentStore(data_dir), EdgeCache(cache_bytes), clock)
    app = web.Application(handler_args={"max_field_size": 8190})
    app["cdn"] = state
    app.router.add_get("/audio/{file_id}/{segment}", state.audio)
    app.router.add_get("/metrics", state.metrics)
    app.router.add_get("/healthz", state.healthz)
    app.router.add_route("*", "/{tail:.*}", state.fallback)
    return app


def app_from_settings(settings=None) -> web.Application:
    from playlog.config import load

    settings = settings or load()
    return build_app(
        signer=Signer.from_settings(settings), data_dir=settings.data_dir, cache_bytes=cache_bytes_from_env()
    )


def run(host: str, port: int, settings=None) -> None:
    """Serve in the foreground until Ctrl-C / SIGTERM."""
    app = app_from_settings(settings)
    log.info("CDN listening on http://%s:%d", host, port)
    web.run_app(app, host=host, port=port, print=None, access_log=None, handle_signals=True)
