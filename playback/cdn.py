"""The CDN host: signed segment URLs served from the audio object store through an edge cache.

``GET|HEAD /audio/{file_id}/{segment}?exp=UNIX&kid=KEYID[&ter=CC]&sig=SIG`` (see :mod:`playback.signing`).

Segments come from the audio object store under PLAYLOG_DATA_DIR (:class:`ingest.store.AudioStore`:
``audio/<file_id>/<index:05d>.<ext>`` + the ``index.json`` manifest, which gives the content type).

HLS (:mod:`playback.hls`), signed the same way over their own paths, with the same checks, ranges and
headers: ``GET|HEAD /hls/{file_id}/index.m3u8?...`` is the VOD media playlist of an AAC rendition
(its segment URIs relative, signed by the CDN with the playlist URL's own ``exp``/``kid``/``ter``);
``GET|HEAD /hls/{file_id}/{k}.aac?...`` is segment ``k`` with the packed-audio ID3 timestamp tag in
front (RFC 8216 section 3.4). ``Range`` applies to those resulting bytes; the ``/audio`` form of the
same segment is untouched. Opus renditions have no HLS form (404).

Order of checks: signature first (403 for missing, malformed, unknown-kid, tampered, other-path or
expired URLs), then takedowns (403 ``reason: taken_down``, below), then the store (404 for an unknown
file or segment), then conditionals and ``Range``.

Takedowns reach URLs already handed out (mechanism (a) of the "Trust" issue). A signed URL lives up
to an hour, so the signature alone would keep serving a rendition taken down after it was issued.
The CDN therefore follows the ``view.catalog`` and ``view.rights`` compacted topics itself (the same
:class:`playback.replica.ReplicaFeed` as the API, only those two kinds) into a :class:`TakedownView`:
file_id -> upload (the track documents' ladders), upload -> logical track (the catalog index, so an
alias's takedown covers the canonical upload and back) and every upload's takedowns. The URL carries
the requester's territory in ``ter``, covered by the signature (the API signs the listener's country),
so the CDN knows where a segment is played:

- a URL for territory T of a rendition whose logical track is taken down in T (or ``*``) at the time of
  the request is refused: 403 ``{"error": {"status": 403, "message": "forbidden: track ... is taken down
  in T", "reason": "taken_down"}}``; the same track's URLs for other territories keep working;
- a URL with no territory (the form signed before ``ter`` existed) is refused once the track is taken
  down *anywhere*: the CDN cannot tell where it is played, so it errs on the side of the rights holder;
- when a takedown reaches the view, every segment of the track's renditions is purged from the edge
  cache (:meth:`playback.edge_cache.EdgeCache.purge`, ``playlog_cdn_cache_purged``);
- until the view caught up with the end offsets seen at start, URLs with a territory get 503 with
  ``Retry-After`` (never an answer from a half-built view); territory-less URLs are judged on what is
  known so far (they cannot be told apart from URLs of a CDN run without a broker).

The bound: a takedown applies to the next request once its view document is applied, i.e. within one
consumer poll (<= ~0.2 s: 100 ms consume timeout, 20 ms fetch wait) after the worker published it on
``view.rights`` / ``view.catalog``; end to end it is the worker's fold-and-publish latency plus that
(measured here: about 1 s from running ``playlog takedown`` to the first 403). tests/integration/test_cdn_takedown.py checks it over HTTP with a real broker
and worker, within 60 s. ``/healthz`` reports the view under ``takedowns`` (ready, files known, purged).

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
PLAYLOG_CDN_CACHE_BYTES, default 256 MiB). A miss reads the file once in a worker thread
(concurrent misses for the same segment share one read) and admits it. Large bodies are sent as
zero-copy ``memoryview`` slices of the cached bytes, written after the headers rather than joined
with them (aiohttp would join them into a new bytes object on this Python); small ones (< 16 KiB)
go in one write with the headers. Accepted sockets get a 4 MiB send buffer so a segment usually
leaves in one ``send``. An object too large to be cached is sent from its file with ``sendfile``.
(Sending cached segments with ``sendfile`` from memfd copies was measured too: slower on loopback,
where the kernel copies the pages for the local receiver anyway, and costlier per request.)
``/metrics`` (Prometheus text) reports requests by status, bytes served, cache
hits/misses/evictions, the hit ratio and a latency histogram; ``/healthz`` says ok.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from core.settings import DEFAULT_CDN_CACHE_BYTES
from ingest.store import AudioStore, SegmentNotFound
from playback import hls
from playback.edge_cache import EdgeCache
from playback.replica import ReplicaFeed
from playback.replica_state import ReplicaState
from playback.signing import Signer, Verdict
from processors import rights as rights_fold

log = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = DEFAULT_CDN_CACHE_BYTES
_SEGMENT_RE = re.compile(r"[0-9]{1,9}")
_HLS_SEGMENT_RE = re.compile(r"([0-9]{1,9})\.aac")
HLS_PLAYLIST_NAME = "index.m3u8"
HLS_FORM = "hls"  # edge cache key suffix of a segment in its HLS form
# Bodies smaller than this are sent in one write together with the headers (a copy, but a cheap one).
_COALESCE_LIMIT = 16 * 1024
# Send buffer of accepted connections (inherited from the listening socket): a whole segment fits,
# so most responses leave in one send() instead of being copied into the transport's buffer.
SNDBUF_BYTES = 4 * 1024 * 1024

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
    """The CDN's one lookup into the audio object store (:class:`ingest.store.AudioStore`).

    Layout ``<data_dir>/audio/<file_id>/<index:05d>.<ext>`` + ``index.json`` (the rendition
    manifest: ext, content_type, segment_count...). Blocking (file system, cached manifests):
    the CDN calls it from a worker thread.
    """

    def __init__(self, data_dir: Path):
        self.audio = AudioStore.from_data_dir(data_dir)

    def locate(self, file_id: str, index: int) -> SegmentLocation | None:
        try:
            path = self.audio.segment_path(file_id, index)
            manifest = self.audio.rendition_manifest(file_id)
        except SegmentNotFound:
            return None
        except (KeyError, TypeError, ValueError) as exc:  # a manifest without ext/segment_count
            log.warning("unusable manifest for %s: %s", file_id, exc)
            return None
        return SegmentLocation(path, content_type_for(manifest, path.suffix.lstrip(".")))


# ---------------------------------------------------------------------------------------------
# What the CDN knows of the takedowns


TAKEDOWN_KINDS = ("catalog", "rights")
CATCHING_UP_RETRY_S = 2


class TakedownView(ReplicaState):
    """The catalog and rights views as far as the CDN needs them (see the module doc).

    Fed by a :class:`~playback.replica.ReplicaFeed` of kinds :data:`TAKEDOWN_KINDS` (its thread calls
    :meth:`apply`); ``on_takedown(file_ids)`` is called (on that thread) with every rendition file of a
    logical track whose view document arrives with a takedown, so the CDN can purge its edge cache.
    """

    def __init__(self, on_takedown: Callable[[set[str]], None] | None = None) -> None:
        super().__init__(search=False)
        self.file_tracks: dict[str, str] = {}  # rendition file_id -> upload track id
        self.track_files: dict[str, set[str]] = {}  # upload track id -> its rendition file ids
        self.on_takedown = on_takedown

    def apply(self, kind: str, key: str, doc: Any) -> None:
        super().apply(kind, key, doc)
        with self.lock:
            try:
                if kind == "catalog" and key.startswith("track:"):
                    upload = key.partition(":")[2]
                    self._map_files(upload, doc)
                elif kind == "rights":
                    upload = key
                else:
                    return
                canon = self.canonical_id(upload) or upload
                ids = self.members(canon)
                files = self.files_of(ids) if self._takedowns(ids) else set()
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.warning("takedown view skipped a %s record %r: %s", kind, key, exc)
                return
        if files and self.on_takedown is not None:
            self.on_takedown(files)

    def _map_files(self, upload: str, doc: dict | None) -> None:
        for f in self.track_files.pop(upload, ()):
            if self.file_tracks.get(f) == upload:
                del self.file_tracks[f]
        files = {r["file_id"] for r in (doc or {}).get("ladder") or []}
        for f in files:
            self.file_tracks[f] = upload
        if files:
            self.track_files[upload] = files

    def _takedowns(self, ids: Iterable[str]) -> list[list]:
        return [entry for t in ids for entry in (self.rights.get(t) or {}).get("takedowns") or ()]

    def files_of(self, ids: Iterable[str]) -> set[str]:
        return {f for t in ids for f in self.track_files.get(t, ())}

    def refusal(self, file_id: str, territory: str | None, now_ms: int) -> str | None:
        """Why a segment of ``file_id`` may not be served for ``territory`` at ``now_ms`` (None: it may).
        ``territory`` None (a URL without one): refused when the track is taken down anywhere."""
        with self.lock:
            upload = self.file_tracks.get(file_id)
            if upload is None:
                return None  # not a rendition of any track the catalog view knows: nothing taken down
            canon = self.canonical_id(upload) or upload
            ids = self.members(canon)
            if territory is not None:
                if rights_fold.taken_down(self.rights, ids, territory, now_ms):
                    return f"track {canon} is taken down in {territory}"
                return None
            where = sorted({c for at, _eid, codes, _reason in self._takedowns(ids) if at <= now_ms for c in codes})
            if where:
                return (f"track {canon} is taken down in {','.join(where)} and this URL names no territory "
                        "(ask the API for a new manifest)")
            return None


# ---------------------------------------------------------------------------------------------
# Metrics


class _CdnCollector(Collector):
    """Exports the hot-path counters (plain ints) at scrape time, so requests pay nothing for them."""

    def __init__(self, state: CdnState):
        self.state = state

    def collect(self):
        st = self.state
        requests = CounterMetricFamily(
            "playlog_cdn_requests", "CDN requests by HTTP status", labels=["status"]
        )
        for status, count in sorted(st.requests_by_status.items()):
            requests.add_metric([str(status)], count)
        yield requests
        yield CounterMetricFamily(
            "playlog_cdn_bytes_served", "Segment body bytes sent", value=st.bytes_served
        )
        cache = st.cache
        yield CounterMetricFamily("playlog_cdn_cache_hits", "Edge cache hits", value=cache.hits)
        yield CounterMetricFamily("playlog_cdn_cache_misses", "Edge cache misses", value=cache.misses)
        yield CounterMetricFamily(
            "playlog_cdn_cache_evictions", "Edge cache evictions", value=cache.evictions
        )
        yield GaugeMetricFamily(
            "playlog_cdn_cache_hit_ratio", "Edge cache hits / lookups", value=cache.hit_ratio
        )
        yield GaugeMetricFamily(
            "playlog_cdn_cache_bytes", "Bytes held by the edge cache", value=cache.size_bytes
        )
        yield GaugeMetricFamily(
            "playlog_cdn_cache_entries", "Segments held by the edge cache", value=len(cache)
        )
        yield GaugeMetricFamily(
            "playlog_cdn_cache_budget_bytes", "Edge cache budget", value=cache.budget_bytes
        )
        yield CounterMetricFamily(
            "playlog_cdn_cache_purged", "Edge cache entries purged (taken-down renditions)", value=cache.purged
        )
        yield CounterMetricFamily(
            "playlog_cdn_takedown_refusals", "Segment requests refused for a takedown", value=st.takedown_refusals
        )
        yield GaugeMetricFamily(
            "playlog_cdn_takedown_view_ready", "1 once the takedown view caught up with the log",
            value=1.0 if st.takedowns_ready else 0.0,
        )


# ---------------------------------------------------------------------------------------------
# The server


def _error(status: int, message: str, headers: dict[str, str] | None = None,
           reason: str | None = None) -> web.Response:
    h = {"Content-Type": "application/json", "Cache-Control": "no-store", "Accept-Ranges": "bytes"}
    if headers:
        h.update(headers)
    error: dict[str, Any] = {"status": status, "message": message}
    if reason is not None:
        error["reason"] = reason
    return web.Response(body=orjson.dumps({"error": error}), status=status, headers=h)


class Segment:
    """One servable object and the metadata served with it.

    In the edge cache its bytes live in an anonymous in-memory file (``memfd``) so they can be
    sent with ``sendfile`` (no copy through Python; where memfd is unavailable they are kept as
    ``bytes`` and sent as memoryview slices). An object too large to be cached keeps only its
    ``path`` and is sent from the file on disk.
    """

    __slots__ = ("size", "etag", "content_type", "file", "data", "path")

    def __init__(
        self,
        size: int,
        etag: str,
        content_type: str,
        *,
        file: io.FileIO | None = None,
        data: bytes | None = None,
        path: Path | None = None,
    ):
        self.size = size
        self.etag = etag
        self.content_type = content_type
        self.file = file  # closed when the last reference goes (eviction + responses in flight done)
        self.data = data
        self.path = path


class CdnState:
    """Everything a CDN app instance holds: keys, store, cache, counters, and (when it follows the
    views) the takedown view and its feed."""

    def __init__(
        self,
        signer: Signer,
        store: SegmentStore,
        cache: EdgeCache,
        clock: Callable[[], float] = time.time,
        *,
        takedowns: TakedownView | None = None,
        feed: ReplicaFeed | None = None,
    ):
        self.signer = signer
        self.store = store
        self.cache = cache
        self.clock = clock
        self.takedowns = takedowns
        self.feed = feed
        self.takedown_refusals = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        if takedowns is not None:
            takedowns.on_takedown = self._on_takedown
        self.requests_by_status: dict[int, int] = {}
        self.bytes_served = 0
        self._inflight: dict[tuple[str, int], asyncio.Future] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_CdnCollector(self))
        self.latency = Histogram(
            "playlog_cdn_request_seconds",
            "CDN /audio handler latency (signature check to the last byte handed to the kernel)",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )

    # -- takedowns ------------------------------------------------------------------------------

    @property
    def takedowns_ready(self) -> bool:
        """The takedown view caught up with the end offsets its feed saw at start (True without a feed)."""
        return self.feed is None or self.feed.caught_up

    def _on_takedown(self, files: set[str]) -> None:
        """From the feed thread: purge the files' segments on the event loop (the cache is not thread-safe)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.purge, files)

    def purge(self, files: set[str]) -> int:
        n = self.cache.purge(lambda key: key[0] in files)
        if n:
            log.info("purged %d cached segment(s) of %d taken-down rendition(s)", n, len(files))
        return n

    async def start_feed(self, settings: Any) -> None:
        self._loop = asyncio.get_running_loop()
        if self.feed is not None:
            self.feed.start(settings)

    async def stop_feed(self) -> None:
        if self.feed is not None:
            await asyncio.to_thread(self.feed.stop, 5.0)

    def takedown_status(self) -> dict[str, Any]:
        if self.takedowns is None:
            return {"following": False, "ready": True, "purged": self.cache.purged}
        feed = self.feed
        return {"following": feed is not None, "ready": self.takedowns_ready,
                "error": feed.last_error if feed is not None else None,
                **(feed.progress() if feed is not None else {}),
                "files": len(self.takedowns.file_tracks), "refused": self.takedown_refusals,
                "purged": self.cache.purged}

    # -- store access -------------------------------------------------------------------------

    def _load(self, file_id: str, index: int) -> Segment | None:
        """Blocking (runs in a worker thread): find the segment, read it if it can be cached."""
        location = self.store.locate(file_id, index)
        if location is None:
            return None
        try:
            st = location.path.stat()
            if not self.cache.admits(st.st_size):
                etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}-{st.st_ino:x}"'
                return Segment(st.st_size, etag, location.content_type, path=location.path)
            data = location.path.read_bytes()
        except OSError as exc:
            log.warning("cannot read %s: %s", location.path, exc)
            return None
        etag = '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'
        return Segment(len(data), etag, location.content_type, data=data)

    async def fetch(self, file_id: str, index: int) -> Segment | None:
        """The segment from the edge cache, else from the store (one read for concurrent misses)."""
        key = (file_id, index)
        segment = self.cache.get(key)
        if segment is not None:
            return segment
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().run_in_executor(None, self._load, file_id, index)
        self._inflight[key] = future
        try:
            segment = await future
        finally:
            self._inflight.pop(key, None)
        if segment is not None and segment.path is None:
            self.cache.put(key, segment, segment.size)
        return segment

    # -- handlers -----------------------------------------------------------------------------

    def _count(self, status: int, nbytes: int) -> None:
        self.requests_by_status[status] = self.requests_by_status.get(status, 0) + 1
        self.bytes_served += nbytes

    async def audio(self, request: web.Request) -> web.StreamResponse:
        return await self._measured(request, self._audio)

    async def hls(self, request: web.Request) -> web.StreamResponse:
        return await self._measured(request, self._hls)

    async def _measured(self, request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        nbytes = 0
        try:
            response = await handler(request)
            status = response.status
            if request.method != "HEAD" and status in (200, 206):
                nbytes = response.content_length or 0
            return response
        except ConnectionError:
            status = 499  # the client went away mid-response (nginx's convention)
            raise
        except Exception:
            log.exception("CDN request failed: %s", request.path_qs)
            return _error(500, "internal error")
        finally:
            self._count(status, nbytes)
            self.latency.observe(time.perf_counter() - started)

    def _verify(self, request: web.Request, file_id: str, now: float) -> Verdict | web.Response:
        """The signature, then the takedowns: the URL's verdict, or the refusal to answer."""
        query = request.query
        verdict = self.signer.verify(
            request.path, query.get("exp"), query.get("kid"), query.get("sig"), now=now,
            territory=query.get("ter"),
        )
        if not verdict.ok:
            return _error(403, f"forbidden: {verdict.reason}")
        if self.takedowns is not None:
            if verdict.territory is not None and not self.takedowns_ready:
                return _error(503, "the CDN is catching up with the takedown view; retry shortly",
                              {"Retry-After": str(CATCHING_UP_RETRY_S)})
            refusal = self.takedowns.refusal(file_id, verdict.territory, int(now * 1000))
            if refusal is not None:
                self.takedown_refusals += 1
                return _error(403, f"forbidden: {refusal}", reason="taken_down")
        return verdict

    async def _audio(self, request: web.Request) -> web.StreamResponse:
        now = self.clock()
        info = request.match_info
        file_id, segment_s = info["file_id"], info["segment"]
        verdict = self._verify(request, file_id, now)
        if not isinstance(verdict, Verdict):
            return verdict
        if not _SEGMENT_RE.fullmatch(segment_s):
            return _error(404, "no such segment")
        segment = await self.fetch(file_id, int(segment_s))
        if segment is None:
            return _error(404, f"no such segment: {file_id}/{segment_s}")
        return await self._respond(request, segment, now)

    # -- HLS (playback/hls.py) ----------------------------------------------------------------

    async def _hls(self, request: web.Request) -> web.StreamResponse:
        """``/hls/{file_id}/index.m3u8`` (the media playlist) or ``/hls/{file_id}/{k}.aac`` (a segment
        with its timestamp tag), signed like ``/audio`` URLs; same order of checks."""
        now = self.clock()
        info = request.match_info
        file_id, name = info["file_id"], info["name"]
        verdict = self._verify(request, file_id, now)
        if not isinstance(verdict, Verdict):
            return verdict
        if name == HLS_PLAYLIST_NAME:
            obj = await self.hls_playlist(file_id, int(request.query["exp"]), verdict)
            if obj is None:
                return _error(404, f"no HLS media playlist for {file_id} (not an AAC rendition)")
            return await self._respond(request, obj, now)
        m = _HLS_SEGMENT_RE.fullmatch(name)
        if m is None:
            return _error(404, "no such HLS object")
        segment = await self.hls_segment(file_id, int(m.group(1)))
        if segment is None:
            return _error(404, f"no such HLS segment: {file_id}/{name}")
        return await self._respond(request, segment, now)

    def _hls_rendition(self, file_id: str) -> dict | None:
        """Blocking: the rendition's index.json when HLS can carry it (AAC in ADTS with timing)."""
        try:
            rendition = self.store.audio.rendition_manifest(file_id)
            hls.segment_timings(rendition)
        except (SegmentNotFound, hls.NotHlsRendition):
            return None
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("unusable manifest for %s: %s", file_id, exc)
            return None
        return rendition

    async def hls_playlist(self, file_id: str, exp: int, verdict: Verdict) -> Segment | None:
        """The media playlist for a verified playlist URL: its segments signed with the URL's own exp,
        kid and territory (cached per URL parameters; purged with the rendition on a takedown)."""
        key = (file_id, HLS_PLAYLIST_NAME, exp, verdict.kid, verdict.territory)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        rendition = await asyncio.get_running_loop().run_in_executor(None, self._hls_rendition, file_id)
        if rendition is None:
            return None
        text = hls.media_playlist(rendition, self.signer, exp, kid=verdict.kid, territory=verdict.territory)
        data = text.encode()
        etag = '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'
        playlist = Segment(len(data), etag, hls.PLAYLIST_CONTENT_TYPE, data=data)
        self.cache.put(key, playlist, len(data))
        return playlist

    async def hls_segment(self, file_id: str, index: int) -> Segment | None:
        """Segment ``index`` in its HLS form: the packed-audio timestamp tag, then the stored bytes
        (cached apart from the plain segment, whose bytes, ETag and ranges stay as they are)."""
        key = (file_id, index, HLS_FORM)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        loop = asyncio.get_running_loop()
        rendition = await loop.run_in_executor(None, self._hls_rendition, file_id)
        if rendition is None:
            return None
        timings = hls.segment_timings(rendition)
        if not 0 <= index < len(timings):
            return None
        raw = await self.fetch(file_id, index)
        if raw is None:
            return None
        body = raw.data
        if body is None and raw.path is not None:  # too large for the cache: read it for this answer
            try:
                body = await loop.run_in_executor(None, raw.path.read_bytes)
            except OSError as exc:
                log.warning("cannot read %s: %s", raw.path, exc)
                return None
        if body is None:
            return None
        data = hls.timestamp_tag(timings[index].timestamp(int(rendition["sample_rate_hz"]))) + body
        etag = raw.etag[:-1] + '.hls"'  # another representation of the same segment: another strong ETag
        segment = Segment(len(data), etag, hls.SEGMENT_CONTENT_TYPE, data=data)
        self.cache.put(key, segment, len(data))
        return segment

    # -- the answer: conditionals, Range, HEAD, body -------------------------------------------

    async def _respond(self, request: web.Request, segment: Segment, now: float) -> web.StreamResponse:
        size, etag = segment.size, segment.etag
        headers = {
            "Content-Type": segment.content_type,
            "Accept-Ranges": "bytes",
            "ETag": etag,
            "Cache-Control": f"public, max-age={max(0, int(request.query['exp']) - int(now))}, immutable",
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
        length = end - start + 1

        if request.method == "HEAD":
            headers["Content-Length"] = str(length)
            return web.Response(status=status, headers=headers)
        if segment.data is not None:
            return await _send_buffer(request, status, headers, memoryview(segment.data)[start : end + 1])
        if segment.file is not None:
            return await _send_file(request, status, headers, segment.file, start, length)
        loop = asyncio.get_running_loop()
        file = await loop.run_in_executor(None, _open_rb, segment.path)
        try:
            return await _send_file(request, status, headers, file, start, length)
        finally:
            file.close()

    async def metrics(self, request: web.Request) -> web.Response:
        self._count(200, 0)
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(self, request: web.Request) -> web.Response:
        self._count(200, 0)
        body = {"status": "ok", "cache_entries": len(self.cache), "cache_hit_ratio": self.cache.hit_ratio,
                "takedowns": self.takedown_status()}
        return web.Response(body=orjson.dumps(body), headers={"Content-Type": "application/json"})

    async def fallback(self, request: web.Request) -> web.Response:
        if request.path.startswith(("/audio/", "/hls/")) and request.method not in ("GET", "HEAD"):
            self._count(405, 0)
            return _error(405, f"method {request.method} not allowed", {"Allow": "GET, HEAD"})
        self._count(404, 0)
        return _error(404, "not found")


def _open_rb(path: Path) -> io.FileIO:
    return io.FileIO(path, "rb")


async def _send_buffer(
    request: web.Request, status: int, headers: dict[str, str], body: memoryview
) -> web.StreamResponse:
    if len(body) < _COALESCE_LIMIT:
        return web.Response(body=bytes(body), status=status, headers=headers)
    # Headers go out first, then the memoryview is handed to the transport as is (web.Response
    # would join headers and body into one new bytes object on Python < 3.12.9).
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body)
    await response.write_eof()
    return response


async def _send_file(
    request: web.Request, status: int, headers: dict[str, str], file: io.FileIO, offset: int, length: int
) -> web.StreamResponse:
    """Small bodies: one pread and a single write; large ones: headers, then ``sendfile``."""
    if length < _COALESCE_LIMIT:
        return web.Response(body=os.pread(file.fileno(), length, offset), status=status, headers=headers)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = length
    await response.prepare(request)
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client closed the connection")
    # asyncio's loop.sendfile uses os.sendfile with an explicit offset (several responses can
    # share one file object) and falls back to read+write where sendfile is unavailable.
    await asyncio.get_running_loop().sendfile(transport, file, offset, length)
    await response.write_eof()
    return response


def cache_bytes_from_env() -> int:
    """The edge cache budget (``PLAYLOG_CDN_CACHE_BYTES``; ValueError when not an integer >= 0)."""
    from core.settings import load

    return load().cdn_cache_bytes



CDN_KEY = web.AppKey("cdn", CdnState)
def build_app(
    *,
    signer: Signer,
    data_dir: Path,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    clock: Callable[[], float] = time.time,
    follow: Any = None,
    takedowns: TakedownView | None = None,
) -> web.Application:
    """The CDN aiohttp application (``app[CDN_KEY]`` is its :class:`CdnState`).

    ``follow``: settings whose broker and topic prefix the takedown view follows (started with the
    app); ``takedowns``: a view filled by other means (tests). Neither: no takedown checks.
    """
    feed = None
    if follow is not None:
        takedowns = takedowns or TakedownView()
        feed = ReplicaFeed(takedowns, TAKEDOWN_KINDS, name="takedown view")
    state = CdnState(signer, SegmentStore(data_dir), EdgeCache(cache_bytes), clock, takedowns=takedowns, feed=feed)
    app = web.Application(handler_args={"max_field_size": 8190})
    app[CDN_KEY] = state

    async def on_startup(app: web.Application) -> None:
        await state.start_feed(follow)

    async def on_cleanup(app: web.Application) -> None:
        await state.stop_feed()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_get("/audio/{file_id}/{segment}", state.audio)
    app.router.add_get("/hls/{file_id}/{name}", state.hls)
    app.router.add_get("/metrics", state.metrics)
    app.router.add_get("/healthz", state.healthz)
    app.router.add_route("*", "/{tail:.*}", state.fallback)
    return app


def app_from_settings(settings=None) -> web.Application:
    from core.settings import load

    settings = settings or load()
    return build_app(
        signer=Signer.from_settings(settings), data_dir=settings.data_dir, cache_bytes=cache_bytes_from_env(),
        follow=settings,
    )


def listening_socket(host: str, port: int, sndbuf: int = 0) -> socket.socket:
    """A listening TCP socket; ``sndbuf`` > 0 sets SO_SNDBUF, which accepted connections inherit."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if sndbuf > 0:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        sock.bind(address)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def run(host: str, port: int, settings=None) -> None:
    """Serve in the foreground until Ctrl-C / SIGTERM."""
    app = app_from_settings(settings)
    sock = listening_socket(host, port, SNDBUF_BYTES)
    log.info("CDN listening on http://%s:%d", host, port)
    web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=True)
