"""Ingest's loudness meter (ffmpeg's ebur128 through PyAV) against sources that are not ingest:

- the published reference values of ITU-R BS.1770-4 and EBU Tech 3341 (the EBU R128 meter test
  set: steady and gated 1 kHz sines, expected integrated loudness within +-0.1 LU);
- an independent BS.1770 implementation, pyloudnorm (its own K-weighting filter, derived from
  the analog prototype, and its own gating), on signals where the K-weighting matters (low and
  high sines, noise, music-like masters at 44.1 and 48 kHz, mono);
- true peak: the peak of a sine is its amplitude whatever the sampling phase (analytic), so a
  sine sampled off its crests must read above its sample peak.
"""

from __future__ import annotations

import math

import numpy as np
import pyloudnorm
import pytest

from ingest.loudness import measure_array
from ingest.synthetic import render_master

RATE = 48_000
EBU_TOLERANCE_LU = 0.1  # EBU Tech 3341: integrated loudness within +-0.1 LU of the expected value


def sine(freq_hz: float, peak_dbfs: float, seconds: float, rate: int = RATE, phase: float = 0.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return 10 ** (peak_dbfs / 20) * np.sin(2 * np.pi * freq_hz * t + phase)


def stereo(x: np.ndarray) -> np.ndarray:
    return np.stack([x, x])


def pyloudnorm_lufs(samples: np.ndarray, rate: int) -> float:
    """pyloudnorm wants (samples, channels) float64."""
    return pyloudnorm.Meter(rate).integrated_loudness(np.ascontiguousarray(samples.T, dtype=np.float64))


def ingest_lufs(samples: np.ndarray, rate: int = RATE) -> float:
    return measure_array(samples.astype(np.float32), rate).integrated_lufs


# -- published reference values -------------------------------------------------------------------
def test_bs1770_full_scale_sine_in_one_channel_reads_minus_3_01() -> None:
    # BS.1770-4: a 0 dBFS 997 Hz sine applied to one front channel reads -3.01 LKFS
    assert abs(ingest_lufs(sine(997, 0.0, 5.0)[None]) - -3.01) <= EBU_TOLERANCE_LU


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        ([(-23.0, 20)], -23.0),  # Tech 3341 case 1: stereo 1 kHz sine, -23 dBFS, 20 s
        ([(-33.0, 20)], -33.0),  # case 2: -33 dBFS
        ([(-36.0, 10), (-23.0, 60), (-36.0, 10)], -23.0),  # case 3: the relative gate drops the -36 parts
        ([(-72.0, 10), (-36.0, 10), (-23.0, 60), (-36.0, 10), (-72.0, 10)], -23.0),  # case 4: both gates
        ([(-26.0, 20), (-20.0, 20.1), (-26.0, 20)], -23.0),  # case 5: nothing gated, energy mean
    ],
    ids=["case1", "case2", "case3", "case4", "case5"],
)
def test_ebu_tech_3341_integrated_loudness_cases(segments: list[tuple[float, float]], expected: float) -> None:
    x = stereo(np.concatenate([sine(1000, level, seconds) for level, seconds in segments]))
    assert abs(ingest_lufs(x) - expected) <= EBU_TOLERANCE_LU


def test_case_5_expectation_follows_from_the_gating_definition() -> None:
    """Why case 5 is -23: the energy mean of its 400 ms blocks, none below the relative gate."""
    power = [(10 ** (-26 / 10), 20), (10 ** (-20 / 10), 20.1), (10 ** (-26 / 10), 20)]
    mean = sum(p * s for p, s in power) / sum(s for _, s in power)
    assert abs(10 * math.log10(mean) - -23.0) < 0.01  # a stereo sine of peak L dBFS reads L LUFS


# -- an independent meter -------------------------------------------------------------------------
def _noise(seconds: float, pink: bool, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    white = rng.standard_normal((2, round(seconds * RATE)))
    if pink:  # 1/f power: shape the spectrum
        f = np.fft.rfftfreq(white.shape[1], 1 / RATE)
        spec = np.fft.rfft(white, axis=1)
        spec[:, 1:] /= np.sqrt(f[1:])
        spec[:, 0] = 0
        white = np.fft.irfft(spec, n=white.shape[1], axis=1)
    return 0.1 * white / np.sqrt((white**2).mean())


@pytest.mark.parametrize(
    ("name", "samples", "rate"),
    [
        ("sine 60 Hz (K high-pass)", stereo(sine(60, -20, 5)), RATE),
        ("sine 100 Hz", stereo(sine(100, -20, 5)), RATE),
        ("sine 5 kHz (K shelf)", stereo(sine(5000, -20, 5)), RATE),
        ("sine 10 kHz", stereo(sine(10_000, -20, 5)), RATE),
        ("mono sine 440 Hz", sine(440, -12, 5)[None], RATE),
        ("white noise", _noise(10, pink=False, seed=1), RATE),
        ("pink noise", _noise(10, pink=True, seed=2), RATE),
        ("music-like master 44.1 kHz", render_master(7_000, -16.0, seed=1, sample_rate=44_100), 44_100),
        ("music-like master 48 kHz", render_master(7_000, -16.0, seed=1, sample_rate=48_000), 48_000),
        ("quiet music-like master", render_master(6_000, -30.0, seed=3, sample_rate=48_000), 48_000),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_agrees_with_pyloudnorm(name: str, samples: np.ndarray, rate: int) -> None:
    assert abs(ingest_lufs(samples, rate) - pyloudnorm_lufs(samples, rate)) <= EBU_TOLERANCE_LU, name


def test_loudness_follows_gain_exactly() -> None:
    """6 dB less signal is 6 LU less loudness (BS.1770 is a power measure): not a constant reading."""
    master = render_master(6_000, -16.0, seed=4, sample_rate=RATE)
    assert abs(ingest_lufs(master) - ingest_lufs(master * 10 ** (-6 / 20)) - 6.0) <= 0.05


# -- true peak ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("freq_hz", "phase_deg"), [(997, 0), (8_000, 60), (6_000, 60)])
def test_true_peak_of_a_sine_is_its_amplitude(freq_hz: int, phase_deg: float) -> None:
    amplitude_db = -6.0
    x = sine(freq_hz, amplitude_db, 3.0, phase=math.radians(phase_deg))
    sample_peak_db = 20 * math.log10(np.abs(x).max())
    tp = measure_array(stereo(x).astype(np.float32), RATE).true_peak_dbtp
    # EBU Tech 3341's true-peak tolerance: +0.2 / -0.4 dB
    assert amplitude_db - 0.4 <= tp <= amplitude_db + 0.2, (tp, sample_peak_db)
    if freq_hz != 997:  # sampled off its crests: the samples miss the peak, the true-peak meter must not
        assert sample_peak_db < amplitude_db - 0.25 < tp
