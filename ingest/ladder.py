"""The encode ladder: one master -> segmented AAC/Opus renditions with measured loudness (PyAV).

Rungs: AAC-LC at 96, 160 and 320 kbps (ADTS segments) and Opus at 96 and 160 kbps (Ogg
segments, constrained VBR so the rung's bandwidth is predictable); see ``ingest.store`` for why
these segment formats. Vorbis is not on the ladder: the only Vorbis encoder in the ``av`` wheel
is ffmpeg's experimental native one, which ignores the requested bitrate (it produced ~350 kbps
when asked for 160 kbps in our probe), so it does not hold up.

Renditions are stereo (a mono master becomes dual mono). Each rung is one continuous encode of the whole master, cut into segments of ``segment_ms``
(10 s by default) at codec-frame boundaries: segment k holds the frames whose source time falls
in [k * segment_ms, (k + 1) * segment_ms), so a seek to t fetches segment t // segment_ms.
Loudness (EBU R128 integrated, true peak) is measured on the rendition decoded back, which also
proves that it decodes.

``encode_rung`` is a top-level function of plain arguments so a process pool can run it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
from av.audio.resampler import AudioResampler

from ingest.loudness import LoudnessMeter
from ingest.store import AudioStore

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_MS = 10_000
AAC_FRAME = 1024
OPUS_RATE = 48_000


@dataclass(frozen=True)
class Rung:
    codec: str  # as in audio.encoded: "aac" | "opus"
    bitrate_kbps: int
    encoder: str  # ffmpeg encoder name
    container: str  # "adts" | "ogg"
    ext: str
    content_type: str
    sample_format: str
    options: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return f"{self.codec}-{self.bitrate_kbps}"


def _aac(kbps: int) -> Rung:
    return Rung("aac", kbps, "aac", "adts", "aac", "audio/aac", "fltp")


def _opus(kbps: int) -> Rung:
    return Rung(
        "opus", kbps, "libopus", "ogg", "opus", "audio/ogg; codecs=opus", "flt",
        (("vbr", "constrained"), ("application", "audio")),
    )


LADDER: tuple[Rung, ...] = (_aac(96), _aac(160), _aac(320), _opus(96), _opus(160))


class MasterError(Exception):
    """A master that cannot be decoded; the message is the one-line reason."""


@dataclass(frozen=True)
class MasterInfo:
    sample_rate: int
    channels: int
    duration_ms: int  # of the decoded audio


def _reason(exc: BaseException) -> str:
    if isinstance(exc, av.FFmpegError):
        return exc.strerror or str(exc)
    return f"{type(exc).__name__}: {exc}"


def master_frames(path: str | Path) -> Iterator[av.AudioFrame]:
    """Decoded frames of the master's first audio stream; MasterError when it does not decode."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise MasterError(f"does not open as audio: {_reason(exc)}") from None
    with container:
        if not container.streams.audio:
            raise MasterError("has no audio stream")
        stream = container.streams.audio[0]
        try:
            yield from container.decode(stream)
        except av.FFmpegError as exc:
            raise MasterError(f"does not decode: {_reason(exc)}") from None


def probe_master(path: str | Path) -> MasterInfo:
    """Decode the whole master once: its rate, channels and exact duration (MasterError if bad)."""
    rate = channels = samples = 0
    for frame in master_frames(path):
        rate, channels = frame.sample_rate, frame.layout.nb_channels
        samples += frame.samples
    if samples == 0 or rate == 0:
        raise MasterError("decodes to no audio")
    return MasterInfo(rate, channels, samples * 1000 // rate)


def output_rate(rung: Rung, master_rate: int) -> int:
    if rung.codec == "opus":
        return OPUS_RATE
    return master_rate if master_rate in (44_100, 48_000) else 48_000


def _resampled(path: str | Path, fmt: str, layout: str, rate: int, frame_size: int, info: list[int]
               ) -> Iterator[av.AudioFrame]:
    """Master frames converted to (fmt, layout, rate) in frames of ``frame_size`` samples.

    ``info`` collects [master rate, master channels, master samples] as a side effect.
    """
    resampler = AudioResampler(format=fmt, layout=layout, rate=rate, frame_size=frame_size or None)
    pts = 0
    for frame in master_frames(path):
        info[0], info[1] = frame.sample_rate, frame.layout.nb_channels
        info[2] += frame.samples
        frame.pts = None
        for out in resampler.resample(frame):
            out.pts = pts
            pts += out.samples
            yield out
    for out in resampler.resample(None):
        out.pts = pts
        pts += out.samples
        yield out


def _segment_of(source_sample: int, rate: int, segment_ms: int) -> int:
    return max(0, source_sample) * 1000 // (rate * segment_ms)


def split_adts(data: bytes) -> list[bytes]:
    """An ADTS stream -> its frames (each with its header); ValueError if it is not ADTS."""
    frames = []
    i, n = 0, len(data)
    while i < n:
        if i + 7 > n or data[i] != 0xFF or (data[i + 1] & 0xF6) != 0xF0:
            raise ValueError(f"no ADTS sync word at byte {i}")
        length = ((data[i + 3] & 0x03) << 11) | (data[i + 4] << 3) | (data[i + 5] >> 5)
        if length < 7 or i + length > n:
            raise ValueError(f"bad ADTS frame length {length} at byte {i}")
        if data[i + 6] & 0x03:
            raise ValueError("ADTS frames with several raw data blocks are not supported")
        frames.append(data[i : i + length])
        i += length
    return frames


def _group(items: list, keys: list[int]) -> list[list]:
    groups: list[list] = []
    current = -1
    for item, key in zip(items, keys, strict=True):
        if key != current:
            groups.append([])
            current = key
        groups[-1].append(item)
    return groups


@dataclass
class _Encoded:
    segments: list[bytes]
    timing: list[dict]
    rate: int
    channels: int
    master: MasterInfo


def _encode_aac(path: str | Path, rung: Rung, segment_ms: int, layout: str, master_rate: int) -> _Encoded:
    rate = output_rate(rung, master_rate)
    buf = io.BytesIO()
    info = [0, 0, 0]
    with av.open(buf, "w", format="adts") as out:
        stream = out.add_stream("aac", rate=rate, layout=layout)
        stream.bit_rate = rung.bitrate_kbps * 1000
        ctx = stream.codec_context
        ctx.format = rung.sample_format
        first_pts = None
        for frame in _resampled(path, rung.sample_format, layout, rate, AAC_FRAME, info):
            packets = stream.encode(frame)
            if first_pts is None and packets:
                first_pts = packets[0].pts
            out.mux(packets)
        out.mux(stream.encode(None))
    # the encoder's priming samples (ffmpeg's AAC: one frame) put the first packet at pts -delay
    delay = -first_pts if first_pts is not None and first_pts < 0 else 0
    frames = split_adts(buf.getvalue())
    keys = [_segment_of(j * AAC_FRAME - delay, rate, segment_ms) for j in range(len(frames))]
    segments, timing = [], []
    j = 0
    for group in _group(frames, keys):
        start = max(0, j * AAC_FRAME - delay)
        segments.append(b"".join(group))
        timing.append({"start_ms": start * 1000 // rate, "duration_ms": len(group) * AAC_FRAME * 1000 // rate})
        j += len(group)
    master = MasterInfo(info[0], info[1], info[2] * 1000 // info[0] if info[0] else 0)
    return _Encoded(segments, timing, rate, 1 if layout == "mono" else 2, master)


def _with_pre_skip(opus_head: bytes, pre_skip: int) -> bytes:
    head = bytearray(opus_head)
    if head[:8] != b"OpusHead":
        raise ValueError("unexpected Opus extradata")
    head[10:12] = pre_skip.to_bytes(2, "little")
    return bytes(head)


def _encode_opus(path: str | Path, rung: Rung, segment_ms: int, layout: str) -> _Encoded:
    ctx = av.CodecContext.create(rung.encoder, "w")
    ctx.sample_rate = OPUS_RATE
    ctx.layout = layout
    ctx.format = rung.sample_format
    ctx.bit_rate = rung.bitrate_kbps * 1000
    ctx.options = dict(rung.options)
    ctx.open()
    info = [0, 0, 0]
    packets = []
    for frame in _resampled(path, rung.sample_format, layout, OPUS_RATE, ctx.frame_size, info):
        packets.extend(ctx.encode(frame))
    packets.extend(ctx.encode(None))
    head = bytes(ctx.extradata)
    keys = [_segment_of(p.pts, OPUS_RATE, segment_ms) for p in packets]
    segments, timing = [], []
    for k, group in enumerate(_group(packets, keys)):
        buf = io.BytesIO()
        # bit-exact output with fixed, distinct serial numbers: same input -> same bytes -> same file_id
        opts = {"fflags": "+bitexact", "serial_offset": str(k + 1)}
        with av.open(buf, "w", format="ogg", container_options=opts) as out:
            stream = out.add_stream(rung.encoder, rate=OPUS_RATE, layout=layout)
            stream.codec_context.extradata = head if k == 0 else _with_pre_skip(head, 0)
            stream.time_base = ctx.time_base
            for p in group:
                p.stream = stream
                out.mux(p)
        segments.append(buf.getvalue())
        first = max(0, group[0].pts)
        end = group[-1].pts + group[-1].duration
        timing.append({"start_ms": first * 1000 // OPUS_RATE, "duration_ms": (end - first) * 1000 // OPUS_RATE})
    master = MasterInfo(info[0], info[1], info[2] * 1000 // info[0] if info[0] else 0)
    return _Encoded(segments, timing, OPUS_RATE, 1 if layout == "mono" else 2, master)


def decode_check(data: bytes, expected_channels: int, expected_rate: int) -> tuple[int, LoudnessMeter]:
    """Decode a whole rendition: (decoded samples, meter fed with it); ValueError if it is wrong."""
    meter = LoudnessMeter()
    samples = 0
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            if frame.layout.nb_channels != expected_channels or frame.sample_rate != expected_rate:
                raise ValueError(
                    f"rendition decodes as {frame.layout.nb_channels} ch / {frame.sample_rate} Hz, "
                    f"expected {expected_channels} ch / {expected_rate} Hz"
                )
            samples += frame.samples
            meter.add(frame)
    return samples, meter


def encode_rung(path: str, rung_name: str, segment_ms: int, store_root: str, master_sha256: str) -> dict:
    """Encode one rung of one master, store it, and return its manifest (see ingest.store).

    The manifest also carries ``master`` = {sample_rate, channels, duration_ms}. Raises
    MasterError (with the reason) when the master does not decode.
    """
    rung = RUNGS[rung_name]
    # The ladder is stereo: a mono master is delivered as dual mono, so every rung has one layout
    # and its nominal bitrate (ffmpeg's AAC encoder cannot spend 320 kbps on one channel).
    layout = "stereo"
    frames = master_frames(path)
    try:
        first = next(frames, None)
    finally:
        frames.close()
    if first is None:
        raise MasterError("decodes to no audio")
    if rung.codec == "aac":
        enc = _encode_aac(path, rung, segment_ms, layout, first.sample_rate)
    else:
        enc = _encode_opus(path, rung, segment_ms, layout)
    if enc.master.duration_ms <= 0:
        raise MasterError("decodes to no audio")
    whole = b"".join(enc.segments)
    decoded, meter = decode_check(whole, enc.channels, enc.rate)
    decoded_ms = decoded * 1000 // enc.rate
    # AAC in ADTS adds up to two frames of priming/padding; anything more is a broken encode.
    if abs(decoded_ms - enc.master.duration_ms) > max(60, enc.master.duration_ms // 100):
        raise MasterError(
            f"{rung.name} rendition decodes to {decoded_ms} ms but the master is {enc.master.duration_ms} ms"
        )
    loud = meter.result()
    meta = {
        "codec": rung.codec,
        "container": rung.container,
        "ext": rung.ext,
        "content_type": rung.content_type,
        "bitrate_kbps": rung.bitrate_kbps,
        "sample_rate_hz": enc.rate,
        "channels": enc.channels,
        "segment_ms": segment_ms,
        "duration_ms": enc.master.duration_ms,
        "loudness_lufs": loud.integrated_lufs,
        "true_peak_dbtp": loud.true_peak_dbtp,
        "master_sha256": master_sha256,
        "rung": rung.name,
        "segments": enc.timing,
    }
    manifest = AudioStore(store_root).put_rendition(enc.segments, meta)
    manifest["master"] = {
        "sample_rate": enc.master.sample_rate,
        "channels": enc.master.channels,
        "duration_ms": enc.master.duration_ms,
    }
    log.debug("encoded %s %s -> %s", path, rung.name, manifest["file_id"])
    return manifest


RUNGS: dict[str, Rung] = {r.name: r for r in LADDER}
