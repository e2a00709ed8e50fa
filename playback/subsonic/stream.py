"""Media: ``stream`` and ``download`` (a whole-file rendition, with ``Range``) and ``getCoverArt``.

``stream``: the track is resolved (alias ids to the canonical track; unknown: code 70), the user must be
registered (code 50) and the track playable in their country now (code 50 with the reason: taken down,
not licensed), exactly the check of the manifest and the player. The rendition is chosen by
playback/subsonic/media.py (tier, ``format``, ``maxBitRate``); none encoded yet: code 70. The bytes are
the rendition's segments from the audio store under PLAYLOG_DATA_DIR (the CDN's store, shared by every
process of a deployment), read per request with ``pread`` (nothing is held in memory):

- ``Range: bytes=`` (one range; RFC 9110 through ``playback.cdn.parse_range``): 206 with
  ``Content-Range``; unsatisfiable: 416 with ``Content-Range: bytes */SIZE``; several ranges or an
  invalid header: the whole file (200), as the CDN does; ``If-Range`` with another ETag ignores
  ``Range``; ``HEAD`` answers the headers only;
- ETag: the rendition's content address (its SHA-256), strong; ``Accept-Ranges: bytes``;
- a request from the first byte starts (or reuses) the user's play of the track (playback/subsonic/plays.py).

``download``: the same bytes (the highest rendition the tier allows, no ``maxBitRate``), and starts
no play. ``getCoverArt``: the catalog holds artwork URIs but no images, so every known id (a track,
album, artist or playlist, with or without its ``al-``/``ar-``/``tr-``/``pl-`` prefix) gets a
placeholder PNG, one colour per id, ``size`` pixels square (16..1200, default 300); unknown: code 70.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import zlib

from aiohttp import web

from ingest.store import AudioStore, SegmentNotFound
from playback.cdn import UNSATISFIABLE, etag_matches, parse_range
from playback.subsonic.context import Ctx, method
from playback.subsonic.media import WholeFile, choose_rung, whole_file
from playback.subsonic.plays import playable, start_play
from playback.subsonic.render import Code, SubsonicError

CHUNK = 256 * 1024
MAX_KBPS = 100_000
COVER_SIZES = (16, 1200)


def _store(ctx: Ctx) -> AudioStore:
    return AudioStore.from_data_dir(ctx.api.settings.data_dir)


def _load(store: AudioStore, file_id: str) -> WholeFile | None:
    """Blocking: the whole-file layout of a stored rendition, None when the store does not hold it."""
    try:
        manifest = store.rendition_manifest(file_id)
        paths = [store.segment_path(file_id, k) for k in range(int(manifest["segment_count"]))]
        return whole_file(manifest, paths)
    except (SegmentNotFound, KeyError, TypeError, ValueError, OSError):
        return None


def _read(path: str, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


async def send_file(ctx: Ctx, wf: WholeFile) -> web.StreamResponse:
    """The whole-file answer with conditionals, ``Range`` and ``HEAD`` (see the module doc)."""
    request = ctx.request
    headers = {"Content-Type": wf.content_type, "Accept-Ranges": "bytes", "ETag": wf.etag,
               "Cache-Control": "private, max-age=3600"}
    inm = request.headers.get("If-None-Match")
    if inm is not None and etag_matches(inm, wf.etag):
        return web.Response(status=304, headers=headers)
    rng_header = request.headers.get("Range")
    if rng_header is not None and request.headers.get("If-Range") not in (None, wf.etag):
        rng_header = None
    rng = parse_range(rng_header, wf.size)
    if rng is UNSATISFIABLE:
        return web.Response(status=416, headers={**headers, "Content-Range": f"bytes */{wf.size}"})
    if rng is None:
        start, end, status = 0, wf.size - 1, 200
    else:
        start, end, status = rng.start, rng.end, 206
        headers["Content-Range"] = f"bytes {start}-{end}/{wf.size}"
    length = end - start + 1
    if request.method == "HEAD":
        return web.Response(status=status, headers={**headers, "Content-Length": str(length)})
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = length
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    for path, offset, size in wf.slices(start, end):
        done = 0
        while done < size:
            n = min(CHUNK, size - done)
            data = await loop.run_in_executor(None, _read, str(path), offset + done, n)
            if not data:
                raise ConnectionResetError(f"{path} is shorter than its index says")
            await response.write(data)
            done += len(data)
    await response.write_eof()
    return response


async def _serve(ctx: Ctx, *, download: bool) -> web.StreamResponse:
    canon, user, doc = playable(ctx, ctx.params.required("id"))
    max_kbps = 0 if download else ctx.params.int("maxBitRate", 0, 0, MAX_KBPS)
    fmt = None if download else ctx.params.str("format")
    rung = choose_rung(list(doc.get("ladder") or []), user["product"], max_kbps, fmt)
    if rung is None:
        raise SubsonicError(Code.NOT_FOUND, f"No audio encoded for {canon} yet")
    wf = await asyncio.get_running_loop().run_in_executor(None, _load, _store(ctx), rung["file_id"])
    if wf is None or wf.size == 0:
        raise SubsonicError(Code.NOT_FOUND, f"The audio of {canon} is not in the store")
    range_header = ctx.request.headers.get("Range")
    from_start = range_header is None or (parse_range(range_header, wf.size) or (0, 0))[0] == 0
    if not download and ctx.request.method != "HEAD" and from_start:
        await start_play(ctx, canon, user, doc)
    return await send_file(ctx, wf)


@method("stream")
async def stream(ctx: Ctx) -> web.StreamResponse:
    return await _serve(ctx, download=False)


@method("download")
async def download(ctx: Ctx) -> web.StreamResponse:
    return await _serve(ctx, download=True)


# -- cover art ---------------------------------------------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def placeholder_png(key: str, size: int) -> bytes:
    """A ``size`` x ``size`` PNG of one colour derived from ``key`` (8-bit RGB, no filter)."""
    r, g, b = hashlib.sha256(key.encode()).digest()[:3]
    row = b"\x00" + bytes((r // 2 + 64, g // 2 + 64, b // 2 + 64)) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(row * size, 6))
            + _chunk(b"IEND", b""))


def cover_key(ctx: Ctx, raw: str) -> str | None:
    """The catalog entity a cover-art id names (``kind:id``), None when it names none."""
    replica = ctx.replica
    prefix, _, rest = raw.partition("-")
    candidates = [(prefix, rest)] if prefix in ("al", "ar", "tr", "pl") and rest else []
    candidates += [(k, raw) for k in ("tr", "al", "ar", "pl")]
    for kind, item_id in candidates:
        if kind == "al" and item_id in replica.albums:
            return f"album:{item_id}"
        if kind == "ar" and item_id in replica.artists:
            return f"artist:{item_id}"
        if kind == "tr":
            canon = replica.canonical_id(item_id)
            if canon is not None and canon in replica.tracks:
                return f"track:{canon}"
        if kind == "pl" and replica.playlist_state(item_id) is not None:
            return f"playlist:{item_id}"
    return None


@method("getCoverArt")
async def get_cover_art(ctx: Ctx) -> web.Response:
    raw = ctx.params.required("id")
    size = ctx.params.int("size", 300, 1, 100_000)
    size = max(COVER_SIZES[0], min(COVER_SIZES[1], size))
    key = cover_key(ctx, raw)
    if key is None:
        raise SubsonicError(Code.NOT_FOUND, f"No cover art for {raw[:80]}")
    body = await asyncio.get_running_loop().run_in_executor(None, placeholder_png, key, size)
    etag = '"' + hashlib.blake2b(f"{key}:{size}".encode(), digest_size=12).hexdigest() + '"'
    if etag_matches(ctx.request.headers.get("If-None-Match") or "", etag):
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(body=body, content_type="image/png",
                        headers={"ETag": etag, "Cache-Control": "public, max-age=86400"})
