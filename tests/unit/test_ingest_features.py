"""Ingest's content features (ingest/features.py) on signals whose answer is known from how they are
made: click tracks of a given tempo (the generator's BPM), sines of a given level (RMS = peak / sqrt 2),
silence and a steady tone (no beat); and through the decoder, from a WAV file."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ingest.features import FLOOR_DBFS, analyze_master, analyze_pcm
from ingest.synthetic import write_wav

RATE = 44_100


def click_track(bpm: float, seconds: float, rate: int = RATE, jitter_seed: int | None = None) -> np.ndarray:
    """A 10 ms decaying 2 kHz click every 60/bpm s, over quiet noise (stereo)."""
    rnd = np.random.default_rng(0)
    x = 0.01 * rnd.standard_normal(int(seconds * rate))
    length = int(0.01 * rate)
    click = 0.8 * np.sin(2 * np.pi * 2000 * np.arange(length) / rate) * np.exp(-np.arange(length) / (0.002 * rate))
    n = 0
    while (start := round(n * 60.0 / bpm * rate)) + length < x.size:
        x[start : start + length] += click
        n += 1
    return np.stack([x, x])


@pytest.mark.parametrize("bpm", [120.0, 90.0, 128.0, 174.0, 72.5])
def test_tempo_of_a_click_track_is_the_generators_bpm(bpm: float) -> None:
    got = analyze_pcm(click_track(bpm, 30.0), RATE).tempo_bpm
    assert got is not None and abs(got - bpm) <= 0.5, got


def test_tempo_at_another_sample_rate_and_in_mono() -> None:
    got = analyze_pcm(click_track(120.0, 20.0, rate=48_000)[:1], 48_000).tempo_bpm
    assert got is not None and abs(got - 120.0) <= 0.5


def test_no_beat_in_silence_or_a_steady_tone() -> None:
    assert analyze_pcm(np.zeros((2, RATE * 10)), RATE) .tempo_bpm is None
    t = np.arange(RATE * 10) / RATE
    assert analyze_pcm(0.5 * np.sin(2 * np.pi * 440 * t)[None, :], RATE).tempo_bpm is None
    assert analyze_pcm(np.zeros((1, 100)), RATE).tempo_bpm is None  # too short to tell


@pytest.mark.parametrize("peak_dbfs", [0.0, -6.0, -20.0, -57.0])
def test_energy_is_the_rms_level_on_a_60_db_scale(peak_dbfs: float) -> None:
    t = np.arange(RATE * 5) / RATE
    x = 10 ** (peak_dbfs / 20) * np.sin(2 * np.pi * 1000 * t)
    rms_db = peak_dbfs + 20 * math.log10(1 / math.sqrt(2))  # a sine's RMS is its peak over sqrt(2)
    want = min(1.0, max(0.0, (rms_db - FLOOR_DBFS) / -FLOOR_DBFS))
    assert analyze_pcm(np.stack([x, x]), RATE).energy == pytest.approx(want, abs=1e-4)
    assert analyze_pcm(np.zeros((2, RATE)), RATE).energy == 0.0
    assert analyze_pcm(1e-5 * np.ones((1, RATE)), RATE).energy == 0.0  # -100 dBFS: below the floor


def test_analyze_master_decodes_the_file(tmp_path) -> None:
    path = tmp_path / "clicks.wav"
    samples = click_track(120.0, 20.0)
    write_wav(path, samples, RATE)
    got = analyze_master(path)
    assert abs(got["tempo_bpm"] - 120.0) <= 0.5
    pcm = np.round(np.clip(samples, -1, 1) * 32767) / 32768  # what the 16-bit file holds
    want = (20 * math.log10(math.sqrt(np.mean(pcm * pcm))) - FLOOR_DBFS) / -FLOOR_DBFS
    assert got["energy"] == pytest.approx(want, abs=1e-3)
    with pytest.raises(Exception, match="does not open|does not decode|no audio"):
        (tmp_path / "bad.wav").write_bytes(b"not audio at all")
        analyze_master(tmp_path / "bad.wav")
