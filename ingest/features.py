"""Content features of a master, measured at ingest from its decoded PCM: tempo (BPM) and energy (0..1).

- **Tempo**: the master is mixed to mono at ``RATE`` Hz; its onset strength is the spectral flux of
  a short-time Fourier transform (``N_FFT`` samples, hop ``HOP``: ``FPS`` ~ 86 frames/s), i.e. the
  sum over frequency bins of the rise of the log magnitude (floored ``DYNAMIC_RANGE_DB`` below
  the peak) from one frame to the next beyond ``RISE_FLOOR``. The
  autocorrelation of that onset envelope peaks at lags that are multiples of the beat period; the
  lag whose autocorrelation, weighted by a log-normal prior on tempo centred on 120 BPM (one octave
  wide: the usual tie-breaker between a tempo and its half or double), is largest in 40..240 BPM is
  refined by a parabola through its neighbours and gives ``60 * FPS / lag``. None when the master
  has no onset at all (silence, a steady tone).
- **Energy**: the RMS level of all samples in dBFS mapped linearly from -60 dBFS (0) to 0 dBFS (1),
  clamped: a full-scale sine (-3.01 dBFS RMS) is 0.95, digital silence 0.

Loudness (EBU R128) is measured per rendition by ingest.ladder; the catalog view puts all three on the
track document as ``audio_features`` (processors/catalog.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 11_025
N_FFT = 512
HOP = 128
FPS = RATE / HOP
MIN_BPM, MAX_BPM = 40.0, 240.0
PRIOR_BPM = 120.0
PRIOR_OCTAVES = 1.0
FLOOR_DBFS = -60.0  # energy 0 at or below this RMS level
_CHUNK_FRAMES = 4096
HARMONICS = 4  # the beat period is refined on the first 4 multiples of its autocorrelation peak
DYNAMIC_RANGE_DB = 60.0
RISE_FLOOR = 0.1  # log-magnitude rises below this (about 0.9 dB) are not onsets: the leakage ripple of a steady tone
MIN_BEAT_STRENGTH = 0.1  # normalized autocorrelation at the beat lag below this: no steady beat


@dataclass(frozen=True)
class Features:
    tempo_bpm: float | None
    energy: float


def energy_of_rms(rms: float) -> float:
    """(RMS dBFS - FLOOR_DBFS) / -FLOOR_DBFS clamped to 0..1, rounded to 4 decimals."""
    if rms <= 0:
        return 0.0
    db = 20.0 * math.log10(rms)
    return round(min(1.0, max(0.0, (db - FLOOR_DBFS) / -FLOOR_DBFS)), 4)


def onset_envelope(mono: np.ndarray) -> np.ndarray:
    """Spectral flux per hop of a mono signal at RATE (float), computed in chunks of frames."""
    x = np.asarray(mono, dtype=np.float32)
    if x.size < N_FFT:
        return np.zeros(0)
    n_frames = 1 + (x.size - N_FFT) // HOP
    window = np.hanning(N_FFT).astype(np.float32)
    # magnitudes under DYNAMIC_RANGE_DB below a full-window sine at the signal's peak count as that floor:
    # the numerical and leakage floor of a steady tone must not ripple into onsets
    peak = float(np.max(np.abs(x)))
    if peak <= 0:
        return np.zeros(max(0, n_frames - 1))
    floor = peak * float(window.sum()) / 2 * 10 ** (-DYNAMIC_RANGE_DB / 20)
    flux = np.empty(max(0, n_frames - 1))
    prev = None
    for start in range(0, n_frames, _CHUNK_FRAMES):
        stop = min(n_frames, start + _CHUNK_FRAMES)
        idx = (np.arange(start, stop)[:, None] * HOP) + np.arange(N_FFT)[None, :]
        logmag = np.log(np.maximum(np.abs(np.fft.rfft(x[idx] * window, axis=1)), floor))
        if prev is not None:
            logmag = np.vstack([prev, logmag])
            flux[start - 1 : stop - 1] = np.maximum(0.0, np.diff(logmag, axis=0) - RISE_FLOOR).sum(axis=1)
        else:
            flux[: stop - 1] = np.maximum(0.0, np.diff(logmag, axis=0) - RISE_FLOOR).sum(axis=1)
        prev = logmag[-1:]
    return flux


def tempo_of_envelope(env: np.ndarray, fps: float = FPS) -> float | None:
    """Beats per minute from an onset envelope (module doc), rounded to 2 decimals; None without onsets."""
    env = np.asarray(env, dtype=np.float64)
    max_lag = int(math.ceil(60.0 * fps / MIN_BPM)) + 1
    if env.size < 2 * max_lag:
        return None
    env = env - env.mean()
    if float(np.std(env)) < 1e-9:
        return None
    n = 1 << int(math.ceil(math.log2(2 * env.size)))
    spec = np.fft.rfft(env, n)
    ac = np.fft.irfft(spec * np.conj(spec), n)[: HARMONICS * max_lag + 2]
    if ac[0] <= 0:
        return None
    ac = ac / ac[0]
    lags = np.arange(len(ac), dtype=np.float64)
    lo = int(math.floor(60.0 * fps / MAX_BPM))
    hi = int(math.ceil(60.0 * fps / MIN_BPM))
    cand = lags[lo : hi + 1]
    bpm = 60.0 * fps / np.maximum(cand, 1e-9)
    prior = np.exp(-0.5 * (np.log2(bpm / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)
    best = lo + int(np.argmax(ac[lo : hi + 1] * prior))
    if ac[best] < MIN_BEAT_STRENGTH:  # no periodic onsets: a steady tone, noise, silence
        return None
    # refine: the parabola's vertex at the peak and at its multiples k * lag (k-fold finer), averaged
    estimates = []
    for k in range(1, HARMONICS + 1):
        centre = int(round(k * (best if not estimates else estimates[0])))
        if centre + k + 1 >= min(len(ac), env.size // 2):  # keep to lags with half the envelope overlapping
            break
        lo_k, hi_k = max(1, centre - k), min(len(ac) - 2, centre + k)
        peak = lo_k + int(np.argmax(ac[lo_k : hi_k + 1]))
        a, b, c = ac[peak - 1], ac[peak], ac[peak + 1]
        denom = a - 2 * b + c
        vertex = peak + (0.5 * (a - c) / denom if denom < 0 else 0.0)
        estimates.append(vertex / k)
    return round(float(60.0 * fps / float(np.mean(estimates))), 2)


def analyze_pcm(samples: np.ndarray, sample_rate: int) -> Features:
    """Features of planar float samples shaped (channels, n) at ``sample_rate`` (any rate: the tempo
    analysis resamples the mono mix to RATE by linear interpolation)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError("expected samples shaped (channels, n) with n > 0")
    rms = float(np.sqrt(np.mean(x * x)))
    mono = x.mean(axis=0)
    if sample_rate != RATE:
        t = np.arange(int(mono.size * RATE / sample_rate)) * (sample_rate / RATE)
        mono = np.interp(t, np.arange(mono.size), mono)
    return Features(tempo_of_envelope(onset_envelope(mono)), energy_of_rms(rms))


class _Accumulator:
    def __init__(self) -> None:
        self.sum_sq = 0.0
        self.count = 0
        self.parts: list[np.ndarray] = []

    def add(self, mono: np.ndarray, sum_sq: float, count: int) -> None:
        self.parts.append(mono.astype(np.float32))
        self.sum_sq += sum_sq
        self.count += count


def analyze_frames(frames: Iterable) -> Features:
    """Features of decoded PyAV audio frames (any format/layout/rate): the RMS over all channels at
    the master's own rate, the tempo on a mono mix resampled to RATE by ffmpeg."""
    from av.audio.resampler import AudioResampler

    acc = _Accumulator()
    resampler = AudioResampler(format="flt", layout="mono", rate=RATE)
    for frame in frames:
        planar = frame.to_ndarray().astype(np.float64)
        if not frame.format.is_planar:  # packed: (1, n * channels)
            planar = planar.reshape(-1, frame.layout.nb_channels).T
        if frame.format.name.startswith(("s16", "s32", "u8")):
            bits = {"u8": 8, "s16": 16, "s32": 32}[frame.format.name[:3].rstrip("p")]
            planar = planar / float(1 << (bits - 1))
        acc.sum_sq += float(np.sum(planar * planar))
        acc.count += planar.size
        frame.pts = None
        for out in resampler.resample(frame):
            acc.parts.append(out.to_ndarray().reshape(-1).astype(np.float32))
    for out in resampler.resample(None):
        acc.parts.append(out.to_ndarray().reshape(-1).astype(np.float32))
    if acc.count == 0:
        raise ValueError("no audio")
    mono = np.concatenate(acc.parts) if acc.parts else np.zeros(0, dtype=np.float32)
    return Features(tempo_of_envelope(onset_envelope(mono)), energy_of_rms(math.sqrt(acc.sum_sq / acc.count)))


def analyze_master(path: str | Path) -> dict[str, float | None]:
    """``{"tempo_bpm", "energy"}`` of a master file (ingest.ladder.MasterError if it does not decode).
    A top-level function of plain arguments, so a process pool can run it."""
    from ingest.ladder import master_frames

    f = analyze_frames(master_frames(path))
    return {"tempo_bpm": f.tempo_bpm, "energy": f.energy}
