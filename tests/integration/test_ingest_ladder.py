"""The real ladder on real (short, synthesized) masters: PyAV encodes, decodes and measures.

One ingest run (process pool of 2) over a folder with two music-like masters, a 1 kHz sine of
known loudness and a corrupt file is shared by most tests; audio is kept to a few seconds.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import av
import numpy as np
import orjson
import pyloudnorm
import pytest

from ingest.ladder import LADDER
from ingest.loudness import measure_array
from ingest.run import ingest_directory
from ingest.store import AudioStore
from ingest.synthetic import SyntheticCatalog, ingest_audio, render_master, write_wav
from schemas.codec import default_codec
from topics.emit import JsonlSink

SEGMENT_MS = 2_000
T0 = 1_777_593_600_000  # 2026-05-01T00:00:00Z
SINE_PEAK_DBFS = -23.0  # each channel: a 1 kHz sine whose PEAK is -23 dBFS (RMS -26.01 dBFS)
# EBU Tech 3341 case 1: a stereo 1 kHz sine of peak -23 dBFS in each channel reads -23.0 LUFS (+-0.1)
SINE_LUFS = -23.0


class ListSink:
    def __init__(self) -> None:
        self.events: list[dict] = []

    def emit(self, event: dict) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass


def sine(seconds: float, rate: int = 48_000, peak_dbfs: float = SINE_PEAK_DBFS) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = 10 ** (peak_dbfs / 20) * np.sin(2 * np.pi * 1000 * t)
    return np.stack([x, x]).astype(np.float32)


def write_flac(path: Path, samples: np.ndarray, rate: int) -> None:
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    with av.open(str(path), "w") as out:
        s = out.add_stream("flac", rate=rate, layout=layout)
        s.codec_context.format = "s16"
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
        for i in range(0, pcm.shape[1], 4096):
            chunk = np.ascontiguousarray(pcm[:, i : i + 4096].T.reshape(1, -1))
            f = av.AudioFrame.from_ndarray(chunk, format="s16", layout=layout)
            f.sample_rate = rate
            out.mux(s.encode(f))
        out.mux(s.encode(None))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("ingest")
    masters = root / "masters"
    masters.mkdir()
    write_wav(masters / "a_song.wav", render_master(7_000, -16.0, seed=1, sample_rate=44_100), 44_100)
    write_flac(masters / "b_mono.flac", render_master(6_000, -20.0, seed=2, sample_rate=48_000)[:1], 48_000)
    (masters / "b_mono.json").write_text(json.dumps({
        "track_id": "t-b", "isrc": "SE-ABC-26-00002", "title": "Mono", "artist_ids": ["ar1"],
        "artists": [{"artist_id": "ar1", "name": "Artist One", "genres": ["folk"]}],
        "album": {"album_id": "al1", "title": "First", "release_date": "2026-04-01", "label": "Lbl"},
    }))
    write_wav(masters / "c_sine.wav", sine(6.0), 48_000)
    (masters / "d_corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(256)) * 40)
    data = root / "data"
    out = root / "events.jsonl"
    with JsonlSink(out) as sink:
        report = ingest_directory(masters, data, sink, occurred_at=T0, segment_ms=SEGMENT_MS, workers=2,
                                  progress=False)
    events = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    return {"root": root, "masters": masters, "data": data, "report": report, "events": events,
            "store": AudioStore.from_data_dir(data)}


def _pcm(data: bytes) -> tuple[np.ndarray, int]:
    """The whole stream in ``data`` decoded to float samples shaped (channels, n), and its rate."""
    chunks, rate = [], 0
    to_float = av.AudioResampler(format="fltp")  # whatever the decoder gives: planar float in [-1, 1]
    with av.open(io.BytesIO(data)) as c:
        for f in c.decode(c.streams.audio[0]):
            rate = f.sample_rate
            chunks += [g.to_ndarray().astype(np.float64) for g in to_float.resample(f)]
    chunks += [g.to_ndarray().astype(np.float64) for g in to_float.resample(None)]
    return np.concatenate(chunks, axis=1), rate


def reference_lufs(data: bytes) -> float:
    """Integrated loudness of an encoded rendition by an independent BS.1770 meter (pyloudnorm)."""
    samples, rate = _pcm(data)
    return pyloudnorm.Meter(rate).integrated_loudness(np.ascontiguousarray(samples.T))


def reference_true_peak_dbtp(data: bytes) -> float:
    """4x-oversampled peak (BS.1770 Annex 2's method) with scipy's polyphase resampler, not ffmpeg's.
    Interpolators differ most on dense high-frequency content near full scale (ffmpeg's reads up to
    ~0.3 dB higher on the 320 kbps AAC of the music-like master), hence a 0.4 dB tolerance."""
    from scipy.signal import resample_poly

    samples, _ = _pcm(data)
    return 20 * math.log10(float(np.abs(resample_poly(samples, 4, 1, axis=1)).max()))


def _by_name(run) -> dict:
    return {r.path.name: r for r in run["report"].results}


def test_corrupt_master_is_reported_and_the_good_ones_ingested(run) -> None:
    res = _by_name(run)
    assert res["d_corrupt.wav"].error and "d_corrupt" not in (res["d_corrupt.wav"].track_id or "")
    assert "decode" in res["d_corrupt.wav"].error or "open" in res["d_corrupt.wav"].error
    for name in ("a_song.wav", "b_mono.flac", "c_sine.wav"):
        assert res[name].error is None, res[name].error
    assert len(run["report"].failed) == 1
    tracks = [e for e in run["events"] if e["type"] == "track.ingested"]
    assert len(tracks) == 3
    assert run["report"].renditions_encoded == 3 * len(LADDER)


def test_events_are_valid_and_complete(run) -> None:
    codec = default_codec()
    evs = [codec.from_json(e) for e in run["events"]]  # the JSON form validates
    for e in evs:
        assert codec.decode(codec.encode(e)) == e  # and round-trips through Avro
    types = [e["type"] for e in evs]
    assert types.count("artist.ingested") == 1 and types.count("album.ingested") == 1
    assert types.count("audio.encoded") == 3 * len(LADDER)
    by_track: dict[str, list] = {}
    for e in evs:
        if e["type"] == "audio.encoded":
            by_track.setdefault(e["track_id"], []).append((e["codec"], e["bitrate_kbps"]))
    assert all(sorted(v) == sorted((r.codec, r.bitrate_kbps) for r in LADDER) for v in by_track.values())
    mono = next(e for e in evs if e["type"] == "track.ingested" and e["track_id"] == "t-b")
    assert mono["duration_ms"] == 6_000 and mono["artist_ids"] == ["ar1"]


def _decode(data: bytes) -> tuple[int, int, int, str]:
    """(samples, channels, rate, codec name) of the whole stream in ``data``."""
    samples = channels = rate = 0
    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.audio[0]
        name = stream.codec_context.name
        for f in c.decode(stream):
            samples += f.samples
            channels, rate = f.layout.nb_channels, f.sample_rate
    return samples, channels, rate, name


@pytest.mark.parametrize("name", ["a_song.wav", "b_mono.flac", "c_sine.wav"])
def test_every_rendition_decodes_back_with_its_properties(run, name: str) -> None:
    res = _by_name(run)[name]
    store: AudioStore = run["store"]
    master_rate = 44_100 if name == "a_song.wav" else 48_000
    encoded = {e["file_id"]: e for e in run["events"] if e["type"] == "audio.encoded" and e["track_id"] == res.track_id}
    assert set(encoded) == set(res.file_ids.values())
    sizes: dict[str, list] = {}
    for fid, ev in encoded.items():
        data = store.read_all(fid)
        assert len(data) == ev["byte_size"]
        samples, channels, rate, codec_name = _decode(data)
        duration_ms = samples * 1000 / rate
        assert abs(duration_ms - res.duration_ms) <= 0.01 * res.duration_ms, (ev["codec"], ev["bitrate_kbps"], duration_ms)
        assert channels == 2  # the ladder is stereo; the mono master is delivered as dual mono
        expected_rate = 48_000 if ev["codec"] == "opus" else master_rate
        assert rate == expected_rate == ev["sample_rate_hz"]
        assert codec_name == ev["codec"]
        kbps = len(data) * 8 / (res.duration_ms / 1000) / 1000
        # the rung's budget holds (ABR/constrained VBR: within 15 % over a few seconds) ...
        assert kbps <= 1.15 * ev["bitrate_kbps"], (ev["codec"], ev["bitrate_kbps"], kbps)
        if name == "a_song.wav":  # ... and dense stereo music uses it (a sine or dual mono needs fewer bits)
            assert kbps >= 0.85 * ev["bitrate_kbps"], (ev["codec"], ev["bitrate_kbps"], kbps)
        sizes.setdefault(ev["codec"], []).append((ev["bitrate_kbps"], len(data)))
        assert ev["segment_count"] == math.ceil(res.duration_ms / SEGMENT_MS)
    for rungs in sizes.values():  # a higher rung of a codec is bigger
        by_rate = [size for _, size in sorted(rungs)]
        assert by_rate == sorted(by_rate) and len(set(by_rate)) == len(by_rate)


def test_segments_decode_alone_and_concatenated_to_the_whole_track(run) -> None:
    store: AudioStore = run["store"]
    res = _by_name(run)["a_song.wav"]
    for fid in res.file_ids.values():
        manifest = store.rendition_manifest(fid)
        assert manifest["segment_count"] >= 3
        parts = [store.segment_path(fid, k).read_bytes() for k in range(manifest["segment_count"])]
        alone = [_decode(p) for p in parts]
        for (samples, _, rate, _), seg in zip(alone, manifest["segments"], strict=True):
            assert abs(samples * 1000 / rate - seg["duration_ms"]) <= 25, (manifest["rung"], seg)  # one codec frame
        whole = _decode(b"".join(parts))
        assert whole[0] == sum(a[0] for a in alone)  # nothing lost or duplicated at the cuts
        assert abs(whole[0] * 1000 / whole[2] - res.duration_ms) <= 0.01 * res.duration_ms
        starts = [s["start_ms"] for s in manifest["segments"]]
        assert all(abs(st - k * SEGMENT_MS) <= 25 for k, st in enumerate(starts))  # a seek to t -> t // segment_ms


def test_known_loudness_sine_reads_minus_23_lufs(run) -> None:
    direct = measure_array(sine(6.0), 48_000)
    assert abs(direct.integrated_lufs - SINE_LUFS) <= 0.1
    assert abs(direct.true_peak_dbtp - SINE_PEAK_DBFS) <= 0.2  # a sine's true peak is its amplitude
    res = _by_name(run)["c_sine.wav"]
    for fid in res.file_ids.values():
        m = run["store"].rendition_manifest(fid)
        data = run["store"].read_all(fid)
        # what the listener gets: the decoded rendition, measured by another meter
        assert abs(m["loudness_lufs"] - reference_lufs(data)) <= 0.1, (m["rung"], m["loudness_lufs"])
        assert abs(m["loudness_lufs"] - SINE_LUFS) <= 0.5, (m["rung"], m["loudness_lufs"])  # a sine codes well
        assert abs(m["true_peak_dbtp"] - reference_true_peak_dbtp(data)) <= 0.4, (m["rung"], m["true_peak_dbtp"])
        # lossy coding can only add overshoot to the source peak (that is why true peak is measured)
        assert SINE_PEAK_DBFS - 0.5 <= m["true_peak_dbtp"] <= SINE_PEAK_DBFS + 3.0, (m["rung"], m["true_peak_dbtp"])
    # a master 6 dB quieter measures 6 LU lower: the measurement is not a constant
    assert abs(measure_array(sine(6.0, peak_dbfs=-29.0), 48_000).integrated_lufs - (SINE_LUFS - 6)) <= 0.1


@pytest.mark.parametrize("name", ["a_song.wav", "b_mono.flac"])
def test_rendition_loudness_and_peak_agree_with_an_independent_meter(run, name: str) -> None:
    res = _by_name(run)[name]
    for fid in res.file_ids.values():
        m = run["store"].rendition_manifest(fid)
        data = run["store"].read_all(fid)
        assert abs(m["loudness_lufs"] - reference_lufs(data)) <= 0.1, (m["rung"], m["loudness_lufs"])
        assert abs(m["true_peak_dbtp"] - reference_true_peak_dbtp(data)) <= 0.4, (m["rung"], m["true_peak_dbtp"])


def test_content_features_ride_on_every_rendition_of_a_master(run) -> None:
    by_track: dict[str, set] = {}
    for e in run["events"]:
        if e["type"] == "audio.encoded":
            by_track.setdefault(e["track_id"], set()).add((e["tempo_bpm"], e["energy"]))
    assert all(len(v) == 1 for v in by_track.values())  # measured once per master, the same on each rung
    sine_id = _by_name(run)["c_sine.wav"].track_id
    ((tempo, energy),) = by_track[sine_id]
    rms_dbfs = SINE_PEAK_DBFS - 10 * math.log10(2)  # a sine's RMS is its peak over sqrt(2)
    assert tempo is None  # a steady tone has no beat
    assert energy == pytest.approx((rms_dbfs + 60) / 60, abs=1e-3)
    ((_, song_energy),) = by_track[_by_name(run)["a_song.wav"].track_id]
    assert 0 < song_energy < 1


def test_alias_upload_and_same_bytes_are_not_encoded_twice(run, tmp_path: Path) -> None:
    src = _by_name(run)["b_mono.flac"]
    again = tmp_path / "again"
    again.mkdir()
    (again / "copy.flac").write_bytes(src.path.read_bytes())
    (again / "copy.json").write_text(json.dumps({"track_id": "t-b2", "isrc": "SE-ABC-26-00002", "distributor": "d2"}))
    sink = ListSink()
    report = ingest_directory(again, run["data"], sink, occurred_at=T0 + 10_000, segment_ms=SEGMENT_MS, workers=1,
                              progress=False)
    (r,) = report.results
    assert r.error is None and r.alias_of == "t-b" and r.reused
    assert report.renditions_encoded == 0
    track = next(e for e in sink.events if e["type"] == "track.ingested")
    assert track["track_id"] == "t-b2" and track["isrc"] == "SE-ABC-26-00002"
    audio = [e for e in sink.events if e["type"] == "audio.encoded"]
    assert {e["file_id"] for e in audio} == set(src.file_ids.values())
    assert all(e["track_id"] == "t-b2" for e in audio)
    first = {(e["tempo_bpm"], e["energy"]) for e in run["events"] if e["type"] == "audio.encoded"
             and e["track_id"] == "t-b"}
    assert {(e["tempo_bpm"], e["energy"]) for e in audio} == first  # the features came from the index


def test_synthetic_masters_go_through_the_real_ladder(tmp_path: Path) -> None:
    cat = SyntheticCatalog(5, 9, audio_tracks=2, audio_seconds=3)
    list(cat.events())
    sink = ListSink()
    report = ingest_audio(cat, tmp_path, sink, workers=2, progress=False)
    assert not report.failed and len(report.results) == 2
    tracks = {e["track_id"]: e for e in sink.events if e["type"] == "track.ingested"}
    assert set(tracks) == {a.track["track_id"] for a in cat.audio}
    assert all(t["duration_ms"] == 3_000 for t in tracks.values())
    assert all(t["occurred_at"] == a.occurred_at for a in cat.audio for t in [tracks[a.track["track_id"]]])
    store = AudioStore.from_data_dir(tmp_path)
    loud = {}
    for e in sink.events:
        if e["type"] == "audio.encoded" and e["codec"] == "aac" and e["bitrate_kbps"] == 160:
            loud[e["track_id"]] = e["loudness_lufs"]
            assert abs(e["loudness_lufs"] - reference_lufs(store.read_all(e["file_id"]))) <= 0.1, e
    a, b = (loud[x.track["track_id"]] for x in cat.audio)
    assert b - a > 6  # rendered at different levels (-26 and -8 dBFS RMS before limiting)


def test_cli_ingest_names_the_bad_master_and_exits_non_zero(tmp_path: Path, monkeypatch, capsys) -> None:
    from playlog.cli import main

    masters = tmp_path / "in"
    masters.mkdir()
    write_wav(masters / "good.wav", render_master(2_500, -18.0, seed=5), 44_100)
    (masters / "broken.flac").write_bytes(b"fLaC" + b"\x00" * 3000)
    monkeypatch.setenv("PLAYLOG_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "events.jsonl"
    with pytest.raises(SystemExit) as exc:
        main(["ingest", str(masters), "--emit", str(out), "--no-progress", "--at", "2026-05-01T00:00:00Z"])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "FAILED  broken.flac:" in err and "1 of 2 master(s) failed" in err and "Traceback" not in err
    codec = default_codec()
    evs = [codec.from_json(orjson.loads(line)) for line in out.read_bytes().splitlines()]
    assert [e["type"] for e in evs] == ["track.ingested"] + ["audio.encoded"] * len(LADDER)
    assert evs[0]["title"] == "good" and evs[0]["occurred_at"] == T0 + 1  # 2nd master by name: --at + 1 ms
    for e in evs[1:]:
        assert (tmp_path / "data" / e["storage_key"] / "index.json").is_file()
