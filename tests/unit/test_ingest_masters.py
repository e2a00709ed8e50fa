"""Sidecars, catalog events, territories, the store's read side and the loudness reference."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from core.errors import PlaylogError
from ingest.loudness import expected_sine_lufs, k_weighting_db
from ingest.masters import (
    SidecarError,
    audio_event,
    catalog_events,
    find_masters,
    placeholder_isrc,
    read_sidecar,
    title_from_filename,
)
from ingest.store import AudioStore, SegmentNotFound
from ingest.territories import parse_territories
from schemas.codec import default_codec

SHA = "ab" * 32


def _ids():
    n = iter(range(10**6))
    return lambda: f"e{next(n)}"


def test_no_sidecar_defaults_are_valid_and_derived_from_content() -> None:
    evs = catalog_events({}, Path("07 - Blue_Morning.wav"), SHA, 61_000, 1_000, _ids())
    assert [e["type"] for e in evs] == ["track.ingested"]
    t = evs[0]
    assert t["title"] == "Blue Morning" and t["duration_ms"] == 61_000
    assert t["rightsholders"] == [{"rightsholder_id": "rh-direct-upload", "share_ppm": 1_000_000}]
    assert t["isrc"] == placeholder_isrc(SHA) and len(t["isrc"].replace("-", "")) == 12
    again = catalog_events({}, Path("other-name.wav"), SHA, 61_000, 1_000, _ids())[0]
    assert again["track_id"] == t["track_id"]  # same bytes, same ISRC -> same id
    other = catalog_events({"isrc": "SE-ABC-26-00001"}, Path("x.wav"), SHA, 1, 1, _ids())[0]
    assert other["track_id"] != t["track_id"]


def test_sidecar_with_artists_and_album() -> None:
    side = {
        "track_id": "t1", "isrc": "se-abc-26-00001", "title": "Song", "artist_ids": ["ar1"],
        "genres": ["pop"], "explicit": True, "distributor": "d1",
        "rightsholders": [{"rightsholder_id": "a", "share_ppm": 600_000}, {"rightsholder_id": "b", "share_ppm": 400_000}],
        "occurred_at": "2026-05-01T00:00:00Z",
        "artists": [{"artist_id": "ar1", "name": "Ar One"}],
        "album": {"album_id": "al1", "title": "Alb", "release_date": "2026-04-30", "label": "L"},
    }
    evs = catalog_events(side, Path("x.flac"), SHA, 5_000, 9, _ids())
    assert [e["type"] for e in evs] == ["artist.ingested", "album.ingested", "track.ingested"]
    assert evs[2]["isrc"] == "SE-ABC-26-00001" and evs[2]["album_id"] == "al1"
    assert evs[1]["artist_ids"] == ["ar1"] and evs[0]["genres"] == ["pop"]
    assert all(e["occurred_at"] == 1_777_593_600_000 for e in evs)
    codec = default_codec()
    for e in evs:
        assert codec.from_json(codec.to_json(e)) == e


@pytest.mark.parametrize(
    ("side", "reason"),
    [
        ({"rightsholders": [{"rightsholder_id": "a", "share_ppm": 10}]}, "sum to 10"),
        ({"explicit": "yes"}, "explicit"),
        ({"album": {"title": "x"}}, "release_date"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"artists": [{"artist_id": "a", "name": "n", "bogus": 1}]}, "bogus"),
    ],
)
def test_bad_sidecars_give_a_reason(side: dict, reason: str) -> None:
    with pytest.raises(SidecarError, match=reason):
        catalog_events(side, Path("x.wav"), SHA, 1_000, 0, _ids())


def test_read_sidecar_and_find_masters(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"x")
    (tmp_path / "a.json").write_text(json.dumps({"title": "T"}))
    (tmp_path / "b.FLAC").write_bytes(b"x")
    (tmp_path / "b.json").write_text("{not json")
    (tmp_path / "c.wav").write_bytes(b"x")
    (tmp_path / "c.json").write_text(json.dumps({"nope": 1}))
    (tmp_path / "readme.txt").write_text("hi")
    masters, skipped = find_masters(tmp_path)
    assert [p.name for p in masters] == ["a.wav", "b.FLAC", "c.wav"] and [p.name for p in skipped] == ["readme.txt"]
    assert read_sidecar(tmp_path / "a.wav") == {"title": "T"}
    with pytest.raises(SidecarError, match="not valid JSON"):
        read_sidecar(tmp_path / "b.FLAC")
    with pytest.raises(SidecarError, match="unknown field"):
        read_sidecar(tmp_path / "c.wav")


def test_title_from_filename() -> None:
    assert title_from_filename(Path("01_-_My_Song.wav")) == "My Song"
    assert title_from_filename(Path("3. Intro.flac")) == "Intro"
    assert title_from_filename(Path("1999.wav")) == "1999"


def test_territories() -> None:
    assert parse_territories("de, fr,DE", allow_everywhere=False) == ["DE", "FR"]
    assert parse_territories("*", allow_everywhere=True) == ["*"]
    for bad, allow in (("DE,QQ", False), ("", False), ("DE,,FR", False), ("*", False), ("*,DE", True), ("GER", False)):
        with pytest.raises(PlaylogError):
            parse_territories(bad, allow_everywhere=allow)


def test_store_read_side_and_audio_event(tmp_path: Path) -> None:
    store = AudioStore(tmp_path / "audio")
    meta = {"codec": "aac", "container": "adts", "ext": "aac", "content_type": "audio/aac", "bitrate_kbps": 96,
            "sample_rate_hz": 48000, "channels": 2, "segment_ms": 10_000, "duration_ms": 15_000,
            "loudness_lufs": -14.0, "true_peak_dbtp": -1.0,
            "segments": [{"start_ms": 0, "duration_ms": 10_000}, {"start_ms": 10_000, "duration_ms": 5_000}]}
    m = store.put_rendition([b"seg0", b"seg1!"], meta)
    fid = m["file_id"]
    assert store.put_rendition([b"seg0", b"seg1!"], meta)["file_id"] == fid  # content addressed, idempotent
    assert store.segment_path(fid, 1).read_bytes() == b"seg1!"
    assert store.segment_path(fid, 0).name == "00000.aac"
    got = store.rendition_manifest(fid)
    assert got["segment_count"] == 2 and got["byte_size"] == 9 and [s["byte_size"] for s in got["segments"]] == [4, 5]
    assert store.read_all(fid) == b"seg0seg1!"
    for bad in (("../etc", 0), (fid, 2), (fid, -1), ("0" * 32, 0)):
        with pytest.raises(SegmentNotFound):
            store.segment_path(*bad)
    ev = audio_event("t1", got, "e1", 5)
    assert ev["storage_key"] == f"audio/{fid}" and ev["segment_count"] == 2 and ev["byte_size"] == 9


def test_bs1770_reference_values() -> None:
    # BS.1770: a 0 dBFS (peak) 1 kHz sine in one channel reads -3.01 LKFS
    assert math.isclose(expected_sine_lufs(0.0, 1000, 1), -3.01, abs_tol=0.02)
    # the K-weighting is ~+0.69 dB at 1 kHz (what -0.691 cancels) and strongly cuts 20 Hz
    assert 0.6 < k_weighting_db(1000) < 0.75
    assert k_weighting_db(20) < -10
    # stereo, each channel a -23 dBFS peak sine -> -23 LUFS (within rounding of the standard)
    assert math.isclose(expected_sine_lufs(-23.0, 1000, 2), -23.0, abs_tol=0.05)
