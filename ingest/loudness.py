"""Loudness (EBU R128 / ITU-R BS.1770) of decoded audio, measured by ffmpeg's ``ebur128`` filter.

The filter is driven through a PyAV filter graph; its per-frame metadata carries the running
integrated loudness (``lavfi.r128.I``, LUFS) and the running maximum true peak
(``lavfi.r128.true_peak``, linear, 4x oversampled, printed with 3 decimals so its resolution is
0.001 of full scale: about 0.01 dB near 0 dBTP, 0.1 dB near -20 dBTP). The values after the last
frame are the measurements of the whole signal.

``k_weighting_db`` evaluates the BS.1770 K-weighting filter (the published 48 kHz biquads) at a
frequency, so tests can compute the expected loudness of a sine from the standard itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

SILENCE_LUFS = -70.0  # the absolute gate: what ebur128 reports when nothing passes it
FLOOR_DBTP = -120.0  # true peak of digital silence (log of zero), clamped


@dataclass(frozen=True)
class Loudness:
    integrated_lufs: float
    true_peak_dbtp: float


class LoudnessMeter:
    """Feed decoded frames (any layout/rate/format ffmpeg knows); read ``result()`` at the end."""

    def __init__(self) -> None:
        self._graph: av.filter.Graph | None = None
        self._key: tuple | None = None
        self._meta: dict[str, str] = {}
        self._pts = 0

    def _setup(self, frame: av.AudioFrame) -> None:
        graph = av.filter.Graph()
        src = graph.add_abuffer(
            format=frame.format.name, sample_rate=frame.sample_rate, layout=frame.layout.name
        )
        meter = graph.add("ebur128", "metadata=1:peak=true")
        sink = graph.add("abuffersink")
        src.link_to(meter)
        meter.link_to(sink)
        graph.configure()
        self._graph = graph
        self._key = (frame.format.name, frame.sample_rate, frame.layout.name)

    def add(self, frame: av.AudioFrame) -> None:
        key = (frame.format.name, frame.sample_rate, frame.layout.name)
        if self._graph is None:
            self._setup(frame)
        elif key != self._key:
            raise ValueError(f"audio format changed mid-stream ({self._key} -> {key})")
        frame.pts = self._pts
        frame.time_base = Fraction(1, frame.sample_rate)
        self._pts += frame.samples
        assert self._graph is not None
        self._graph.push(frame)
        self._drain()

    def _drain(self) -> None:
        assert self._graph is not None
        while True:
            try:
                out = self._graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            meta = out.metadata
            if "lavfi.r128.I" in meta:  # frames flushed at the end may carry none
                self._meta = dict(meta)

    def result(self) -> Loudness:
        if self._graph is not None:
            try:
                self._graph.push(None)
            except av.EOFError:
                pass
            self._drain()
        lufs = float(self._meta.get("lavfi.r128.I", SILENCE_LUFS))
        if not math.isfinite(lufs):
            lufs = SILENCE_LUFS
        peak = float(self._meta.get("lavfi.r128.true_peak", 0.0))
        dbtp = 20.0 * math.log10(peak) if peak > 0 else FLOOR_DBTP
        return Loudness(round(lufs, 2), round(max(dbtp, FLOOR_DBTP), 2))


def measure_frames(frames: Iterable[av.AudioFrame]) -> Loudness:
    meter = LoudnessMeter()
    for f in frames:
        meter.add(f)
    return meter.result()


def measure_array(samples: np.ndarray, sample_rate: int, chunk: int = 4800) -> Loudness:
    """Loudness of planar float samples shaped (channels, n): 1 or 2 channels."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 2 or samples.shape[0] not in (1, 2):
        raise ValueError("expected samples shaped (channels, n) with 1 or 2 channels")
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    meter = LoudnessMeter()
    for i in range(0, samples.shape[1], chunk):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples[:, i : i + chunk]), format="fltp", layout=layout
        )
        frame.sample_rate = sample_rate
        meter.add(frame)
    return meter.result()


# BS.1770-4 K-weighting at 48 kHz: stage 1 (high shelf), stage 2 (RLB high-pass).
_K_STAGES = (
    ((1.53512485958697, -2.69169618940638, 1.19839281085285), (1.0, -1.69065929318241, 0.73248077421585)),
    ((1.0, -2.0, 1.0), (1.0, -1.99004745483398, 0.99007225036621)),
)


def k_weighting_db(freq_hz: float, sample_rate: int = 48000) -> float:
    """Gain (dB) of the BS.1770 K-weighting filter at ``freq_hz`` (coefficients defined at 48 kHz)."""
    if sample_rate != 48000:
        raise ValueError("the published K-weighting coefficients are for 48 kHz")
    z = np.exp(-1j * 2 * math.pi * freq_hz / sample_rate)
    gain = 1.0 + 0j
    for b, a in _K_STAGES:
        gain *= (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)
    return 20.0 * math.log10(abs(gain))


def expected_sine_lufs(peak_dbfs: float, freq_hz: float, channels: int) -> float:
    """BS.1770 loudness of a steady sine of peak ``peak_dbfs`` in each of ``channels`` (L/R) channels.

    L = -0.691 + 10 log10(sum_i G_i z_i), z_i = mean square of the K-weighted channel = (A k)^2 / 2.
    """
    amp = 10 ** (peak_dbfs / 20)
    k = 10 ** (k_weighting_db(freq_hz) / 20)
    return -0.691 + 10 * math.log10(channels * (amp * k) ** 2 / 2)
