"""HLS (RFC 8216) for standard players, built purely: master playlists (API), media playlists and the
packed-audio timestamp tag (CDN). No aiohttp, no I/O, no clock of its own.

URL shapes (the API hands out the first; everything below it is on the CDN host and signed):

- ``GET /v1/playback/{track_id}/hls/master.m3u8`` (API, ``Authorization: Bearer``): the master
  playlist. Same code path as ``GET /v1/playback/{track_id}/manifest``: same auth, same rights
  check (403 with the same body for a track not playable in the listener's country), same 404 for a
  track without audio, same tier rule (free: up to 160 kbps). It lists the **AAC-LC** rungs the
  tier allows as ``#EXT-X-STREAM-INF`` variants (``CODECS="mp4a.40.2"``), lowest bitrate first.
  Opus rungs are left out: Opus in Ogg is not an HLS packed-audio format (RFC 8216 section 3.4).
  A free listener of a track with no AAC rung gets 404.
- ``{cdn}/hls/{file_id}/index.m3u8?exp=&kid=[&ter=]&sig=`` (CDN): the VOD media playlist of one
  rung. Each variant URI in the master is this URL, **signed like a segment URL** (same key ring,
  same canonical string over its path ``/hls/{file_id}/index.m3u8``, same ``exp`` grid as the
  manifest: ``floor(now / 60) * 60 + 3600``, the listener's country in ``ter``). Players fetch it
  without any header: the signature is the credential, it expires, and editing it gives 403.
- ``{cdn}/hls/{file_id}/{k}.aac?exp=&kid=[&ter=]&sig=`` (CDN): segment ``k`` in its HLS form, the
  stored ADTS bytes with an ID3 tag in front (below). The media playlist names segments by
  *relative* URIs (``{k}.aac?...``), signed by the CDN with the **same** ``exp``, ``kid`` and ``ter``
  as the playlist URL it was asked with, so segment URLs expire exactly with their playlist and a
  key still signs only while it is in the ring. The path differs from ``/audio/{file_id}/{k}``, so
  a signature for one form is never valid for the other; the ``/audio`` bytes and ranges are
  unchanged.

Packed audio (RFC 8216 section 3.4): each segment starts with an ID3v2.4 tag holding one ``PRIV``
frame, owner ``com.apple.streaming.transportStreamTimestamp``, whose 8-byte big-endian payload is
the 33-bit MPEG-2 (90 kHz) timestamp of the segment's first sample. The timeline is the ADTS stream's
own: sample ``s`` of the concatenated rendition (its first, priming frame included) is at
``s * 90000 // sample_rate``, so consecutive segments are contiguous to the tick.

Durations (``#EXTINF``) are real: the rendition's ``index.json`` (ingest/store.py) records each
segment's ``duration_ms = floor(frames * 1024 * 1000 / rate)``; since an AAC frame (1024 samples)
lasts more than 1 ms, the frame count is recovered exactly from it, and ``#EXTINF`` is
``frames * 1024 / rate`` seconds (6 decimals). A manifest whose durations do not have that form
falls back to the millisecond values. ``#EXT-X-TARGETDURATION`` is the largest ``#EXTINF``
rounded to the nearest integer (section 4.3.3.1).

``BANDWIDTH`` (the peak segment bit rate) is an upper estimate: the API's catalog view has no
per-segment sizes, so it is 110 % of the larger of the rung's nominal and average bit rate (the
average from its byte size over the track's duration, also given as ``AVERAGE-BANDWIDTH``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from playback.manifest import URL_TTL_S, allowed_rungs, window_start
from playback.signing import Signer

PLAYLIST_CONTENT_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_CONTENT_TYPE = "audio/aac"
HLS_VERSION = 3
AAC_FRAME_SAMPLES = 1024  # AAC-LC: every frame codes 1024 samples
MPEG_CLOCK_HZ = 90_000
TIMESTAMP_MASK = (1 << 33) - 1
ID3_OWNER = b"com.apple.streaming.transportStreamTimestamp"
BANDWIDTH_HEADROOM_PERCENT = 110
PLAY_ID_DATA_ID = "com.playlog.play_id"
# codec -> RFC 6381 codecs parameter, for the codecs HLS carries as packed audio
CODECS = {"aac": "mp4a.40.2"}
HLS_CONTAINERS = {"aac": "adts"}


class NotHlsRendition(ValueError):
    """A rendition HLS cannot carry (not AAC in ADTS, or no per-segment timing)."""


# -- paths ---------------------------------------------------------------------------------------
def media_playlist_path(file_id: str) -> str:
    """The canonical (decoded, signed) path of a rung's media playlist on the CDN."""
    return f"/hls/{file_id}/index.m3u8"


def segment_path(file_id: str, segment: int) -> str:
    """The canonical (decoded, signed) path of segment ``segment`` in its HLS form on the CDN."""
    if segment < 0:
        raise ValueError(f"segment index must be >= 0, got {segment}")
    return f"/hls/{file_id}/{segment}.aac"


def signed_query(signer: Signer, path: str, exp: int, *, kid: str | None = None,
                 territory: str | None = None) -> str:
    """``exp=..&kid=..[&ter=..]&sig=..`` for ``path`` (the same parameters as a segment URL)."""
    params = signer.sign_path(path, exp, kid, territory=territory)
    ter = f"&ter={params['ter']}" if "ter" in params else ""
    return f"exp={params['exp']}&kid={quote_plus(params['kid'])}{ter}&sig={params['sig']}"


def is_hls_rung(rung: dict) -> bool:
    """True for a rendition HLS carries as packed audio (AAC-LC in ADTS)."""
    return rung.get("codec") in CODECS and rung.get("container") == HLS_CONTAINERS[rung["codec"]]


def hls_rungs(ladder: list[dict], product: str) -> list[dict]:
    """The rungs of the master playlist: the manifest's rungs for the tier, AAC only, same order."""
    return [r for r in allowed_rungs(ladder, product) if is_hls_rung(r)]


# -- master playlist (API) -----------------------------------------------------------------------
def _bandwidths(rung: dict, duration_ms: int | None) -> tuple[int, int | None]:
    """(BANDWIDTH, AVERAGE-BANDWIDTH or None) of a rung, bit/s rounded up (integer arithmetic)."""
    nominal = int(rung["bitrate_kbps"]) * 1000
    average = None
    if duration_ms and duration_ms > 0 and rung.get("byte_size"):
        average = -(-int(rung["byte_size"]) * 8 * 1000 // duration_ms)
    peak = -(-max(nominal, average or 0) * BANDWIDTH_HEADROOM_PERCENT // 100)
    return peak, average


def _quoted_string(value: str) -> str:
    """An RFC 8216 quoted-string (no double quote, CR or LF inside)."""
    if any(c in value for c in '"\r\n'):
        raise ValueError(f"cannot put {value!r} in a quoted-string")
    return f'"{value}"'


def master_playlist(ladder: list[dict], product: str, signer: Signer, now: float, *, cdn_base: str,
                    territory: str | None = None, duration_ms: int | None = None) -> str:
    """The master playlist of a track's ``ladder`` for ``product`` at ``now`` (Unix s): one variant per
    HLS rung, each URI the signed CDN URL of its media playlist (``exp`` on the manifest's grid, the
    listener's ``territory`` signed in). ``duration_ms``: the track's, for ``AVERAGE-BANDWIDTH``."""
    exp = window_start(now) + URL_TTL_S
    base = cdn_base.rstrip("/")
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{HLS_VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for rung in hls_rungs(ladder, product):
        file_id = rung["file_id"]
        peak, average = _bandwidths(rung, duration_ms)
        attrs = [f"BANDWIDTH={peak}"]
        if average is not None:
            attrs.append(f"AVERAGE-BANDWIDTH={average}")
        attrs.append(f"CODECS={_quoted_string(CODECS[rung['codec']])}")
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attrs))
        query = signed_query(signer, media_playlist_path(file_id), exp, territory=territory)
        lines.append(f"{base}/hls/{quote(file_id, safe='')}/index.m3u8?{query}")
    return "\n".join(lines) + "\n"


def with_play_id(playlist: str, play_id: str) -> str:
    """A master playlist with the play grant as ``#EXT-X-SESSION-DATA`` (RFC 8216 section 4.3.4.4)
    after its header lines, so the client reporting the play has the id ``POST /v1/events`` takes."""
    head, sep, rest = playlist.partition("#EXT-X-INDEPENDENT-SEGMENTS\n")
    if not sep:
        raise ValueError("not a master playlist of this module")
    data = f"#EXT-X-SESSION-DATA:DATA-ID={_quoted_string(PLAY_ID_DATA_ID)},VALUE={_quoted_string(play_id)}\n"
    return head + sep + data + rest


# -- media playlist and segments (CDN) ----------------------------------------------------------
@dataclass(frozen=True)
class SegmentTiming:
    """One segment on the rendition's timeline: its first sample and its length, in samples."""

    start_sample: int
    samples: int

    def timestamp(self, rate: int) -> int:
        """The 33-bit 90 kHz timestamp of the segment's first sample."""
        return (self.start_sample * MPEG_CLOCK_HZ // rate) & TIMESTAMP_MASK


def segment_timings(rendition: dict) -> list[SegmentTiming]:
    """Every segment's exact (start, length) in samples, from a rendition's ``index.json``.

    NotHlsRendition when it is not AAC in ADTS or lacks per-segment durations.
    """
    if not is_hls_rung(rendition):
        raise NotHlsRendition(f"{rendition.get('codec')}/{rendition.get('container')} is not HLS packed audio")
    rate = int(rendition.get("sample_rate_hz") or 0)
    segments = rendition.get("segments") or []
    if rate <= 0 or len(segments) != rendition.get("segment_count") or not segments:
        raise NotHlsRendition("the rendition's index has no usable segment list")
    durations = [seg.get("duration_ms") for seg in segments]
    if not all(isinstance(d, int) and d > 0 for d in durations):
        raise NotHlsRendition("the rendition's index has no per-segment durations")
    per_frame = AAC_FRAME_SAMPLES * 1000
    frames = [-(-d * rate // per_frame) for d in durations]  # the one n with floor(n * 1024000 / rate) == d
    if all(n * per_frame // rate == d for n, d in zip(frames, durations, strict=True)):
        lengths = [n * AAC_FRAME_SAMPLES for n in frames]
    else:  # not cut at AAC frames as ingest does: the millisecond values are the best known
        lengths = [d * rate // 1000 for d in durations]
    out, start = [], 0
    for n in lengths:
        out.append(SegmentTiming(start, n))
        start += n
    return out


def _extinf(samples: int, rate: int) -> str:
    return f"{samples / rate:.6f}"


def media_playlist(rendition: dict, signer: Signer, exp: int, *, kid: str | None = None,
                   territory: str | None = None) -> str:
    """The VOD media playlist of a rendition (its ``index.json``): real ``#EXTINF`` per segment and
    relative segment URIs signed with ``exp``, ``kid`` and ``territory`` (those of the playlist URL)."""
    file_id = rendition["file_id"]
    rate = int(rendition["sample_rate_hz"])
    timings = segment_timings(rendition)
    extinfs = [_extinf(t.samples, rate) for t in timings]
    target = max(1, max(math.floor(float(e) + 0.5) for e in extinfs))
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{HLS_VERSION}", f"#EXT-X-TARGETDURATION:{target}",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for k, extinf in enumerate(extinfs):
        query = signed_query(signer, segment_path(file_id, k), exp, kid=kid, territory=territory)
        lines.append(f"#EXTINF:{extinf},")
        lines.append(f"{k}.aac?{query}")
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _syncsafe(n: int) -> bytes:
    if not 0 <= n < 1 << 28:
        raise ValueError("ID3 sizes are 28-bit")
    return bytes(((n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F))


def timestamp_tag(timestamp_90k: int) -> bytes:
    """The ID3v2.4 tag that starts an HLS packed-audio segment: one ``PRIV`` frame, owner
    ``com.apple.streaming.transportStreamTimestamp``, payload the 33-bit timestamp as 8 bytes
    big-endian (RFC 8216 section 3.4). 73 bytes."""
    payload = ID3_OWNER + b"\x00" + (timestamp_90k & TIMESTAMP_MASK).to_bytes(8, "big")
    frame = b"PRIV" + _syncsafe(len(payload)) + b"\x00\x00" + payload
    return b"ID3\x04\x00\x00" + _syncsafe(len(frame)) + frame


def parse_timestamp_tag(data: bytes) -> tuple[int, int]:
    """(timestamp, tag length) of the transport-stream timestamp tag at the start of ``data``;
    ValueError when there is none. The inverse of :func:`timestamp_tag`, for tests and tools."""
    if len(data) < 10 or data[:3] != b"ID3":
        raise ValueError("no ID3 tag")
    size = int.from_bytes(bytes(b & 0x7F for b in data[6:10]), "big")
    end = 10 + size
    i = 10
    while i + 10 <= end:
        frame_id = data[i : i + 4]
        frame_size = int.from_bytes(bytes(b & 0x7F for b in data[i + 4 : i + 8]), "big")
        body = data[i + 10 : i + 10 + frame_size]
        if frame_id == b"PRIV" and body.startswith(ID3_OWNER + b"\x00") and len(body) == len(ID3_OWNER) + 9:
            return int.from_bytes(body[-8:], "big") & TIMESTAMP_MASK, end
        i += 10 + frame_size
    raise ValueError("no transport-stream timestamp PRIV frame")
