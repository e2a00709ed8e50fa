"""HLS (playback/hls.py): the pure master and media playlist builders, the packed-audio timestamp tag,
the API's master route over the replica (same refusals as the manifest) and the CDN's HLS objects.

Expected values are hand-computed from RFC 8216 and the documented policy (URLs expire 3600 s after
the start of the signing minute; AAC frames are 1024 samples; 90 kHz timestamps), written as literals.
The segment durations are those ingest recorded for a real 25.3 s master at 44.1 kHz (10031, 10007 and
5294 ms: 432, 431 and 228 AAC frames, 1091 in all = 25.332971 s, one priming frame and some padding
more than the master).
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ingest.store import AudioStore
from playback import cdn as cdn_app
from playback import hls
from playback.signing import Signer
from tests.unit.test_api_routes import NOW, World, call, catalog_events, ev
from tests.unit.test_api_routes import run as run_api

CDN = "http://cdn.test"
KEYS = {"k1": "secret-one", "k0": "old-secret"}
MINUTE = 1_780_000_020  # a whole minute
MASTER_MS = 25_300
DURATIONS_MS = [10031, 10007, 5294]
FRAMES = [432, 431, 228]


def rung(file_id: str, kbps: int, codec: str = "aac", byte_size: int = 500_000) -> dict:
    return {"file_id": file_id, "codec": codec, "container": "adts" if codec == "aac" else "ogg",
            "bitrate_kbps": kbps, "sample_rate_hz": 44100 if codec == "aac" else 48000, "segment_ms": 10_000,
            "segment_count": 3, "byte_size": byte_size, "loudness_lufs": -14.0, "true_peak_dbtp": -3.0}


LADDER = [rung("f320", 320), rung("o96", 96, "opus"), rung("f96", 96), rung("o160", 160, "opus"),
          rung("f160", 160, byte_size=505_000)]


def rendition(file_id: str = "a" * 32, durations: list[int] | None = None, codec: str = "aac") -> dict:
    """An ``index.json`` as ingest/store.py writes it."""
    durations = DURATIONS_MS if durations is None else durations
    starts = [0, 10007, 20015][: len(durations)]
    return {"file_id": file_id, "codec": codec, "container": "adts" if codec == "aac" else "ogg",
            "ext": "aac" if codec == "aac" else "opus", "sample_rate_hz": 44100, "segment_ms": 10_000,
            "segment_count": len(durations), "duration_ms": MASTER_MS,
            "segments": [{"index": k, "start_ms": s, "duration_ms": d, "byte_size": 1000}
                         for k, (s, d) in enumerate(zip(starts, durations, strict=True))]}


def parse(text: str) -> tuple[list[str], list[tuple[dict[str, str], str]]]:
    """A playlist -> (tag lines, [(attributes of the tag before a URI, URI)]), checking the basic syntax."""
    lines = text.split("\n")
    assert lines[0] == "#EXTM3U" and lines[-1] == "" and text.endswith("\n")
    tags, entries, pending = [], [], None
    for line in lines[1:-1]:
        assert line.strip() == line and line, repr(line)
        if line.startswith("#"):
            assert line.startswith("#EXT")
            tags.append(line)
            name, _, value = line.partition(":")
            if name in ("#EXT-X-STREAM-INF", "#EXTINF"):
                assert pending is None
                pending = {"tag": name, "value": value}
        else:
            assert pending is not None, f"URI without its tag: {line}"
            entries.append((pending, line))
            pending = None
    assert pending is None
    return tags, entries


def attributes(value: str) -> dict[str, str]:
    out, rest = {}, value
    while rest:
        name, _, rest = rest.partition("=")
        if rest.startswith('"'):
            end = rest.index('"', 1)
            out[name], rest = rest[1:end], rest[end + 1 :].removeprefix(",")
        else:
            val, _, rest = rest.partition(",")
            out[name] = val
    return out


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# -- master --------------------------------------------------------------------------------------
def master(product: str, now: float = MINUTE, territory: str | None = "DE") -> str:
    return hls.master_playlist(LADDER, product, Signer(KEYS), now, cdn_base=CDN + "/", territory=territory,
                               duration_ms=MASTER_MS)


def test_master_lists_the_tiers_aac_rungs_as_signed_variants() -> None:
    signer = Signer(KEYS)
    for product, kbps in (("premium", [96, 160, 320]), ("free", [96, 160])):
        tags, variants = parse(master(product))
        assert tags[:2] == ["#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
        assert len(variants) == len(kbps)  # opus rungs are not HLS packed audio: left out
        for (tag, uri), want in zip(variants, kbps, strict=True):
            attrs = attributes(tag["value"])
            assert tag["tag"] == "#EXT-X-STREAM-INF" and attrs["CODECS"] == "mp4a.40.2"
            # 500000 bytes over 25.3 s: 158103 bit/s on average (505000: 159684); BANDWIDTH: 110 % of the
            # larger of that and the nominal rate
            average, peak = {96: (158_103, 173_914), 160: (159_684, 176_000), 320: (158_103, 352_000)}[want]
            assert attrs["AVERAGE-BANDWIDTH"] == str(average) and attrs["BANDWIDTH"] == str(peak)
            parts = urlsplit(uri)
            file_id = {96: "f96", 160: "f160", 320: "f320"}[want]
            assert f"{parts.scheme}://{parts.netloc}" == CDN and unquote(parts.path) == f"/hls/{file_id}/index.m3u8"
            q = query(uri)
            assert q["exp"] == str(MINUTE + 3600) and q["kid"] == "k1" and q["ter"] == "DE"
            path = unquote(parts.path)
            assert signer.verify(path, q["exp"], q["kid"], q["sig"], now=MINUTE + 3599, territory="DE").ok
            assert signer.verify(path, q["exp"], q["kid"], q["sig"], now=MINUTE + 3600,
                                 territory="DE").reason == "url expired"
            assert not signer.verify(path, q["exp"], q["kid"], q["sig"], now=MINUTE, territory="FR").ok
            assert not signer.verify(f"/audio/{file_id}/0", q["exp"], q["kid"], q["sig"], now=MINUTE,
                                     territory="DE").ok


def test_master_is_the_same_within_a_signing_minute_and_without_territory_signs_none() -> None:
    assert master("premium", MINUTE + 59.9) == master("premium")
    assert master("premium", MINUTE + 60) != master("premium")
    assert query(parse(master("premium", MINUTE + 60))[1][0][1])["exp"] == str(MINUTE + 3660)
    _, variants = parse(master("free", territory=None))
    assert all("ter" not in query(uri) for _, uri in variants)
    assert hls.hls_rungs([rung("o96", 96, "opus")], "premium") == []


def test_play_id_is_session_data_after_the_header() -> None:
    text = hls.with_play_id(master("free"), "p.abc")
    tags, variants = parse(text)
    assert tags[2] == '#EXT-X-SESSION-DATA:DATA-ID="com.playlog.play_id",VALUE="p.abc"'
    assert len(variants) == 2
    with pytest.raises(ValueError):
        hls.with_play_id(master("free"), 'a"b')


# -- media playlist ------------------------------------------------------------------------------
def test_media_playlist_has_real_durations_and_relative_signed_segment_uris() -> None:
    signer = Signer(KEYS)
    exp = MINUTE + 3600
    text = hls.media_playlist(rendition(), signer, exp, kid="k0", territory="DE")
    tags, segments = parse(text)
    assert tags[:5] == ["#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:10", "#EXT-X-MEDIA-SEQUENCE:0",
                        "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS"]
    assert tags[-1] == "#EXT-X-ENDLIST"
    extinfs = [tag["value"] for tag, _ in segments]
    assert extinfs == ["10.031020,", "10.007800,", "5.294150,"]  # 432, 431, 228 frames of 1024 / 44100
    total = sum(float(e.rstrip(",")) for e in extinfs)
    assert total == pytest.approx(1091 * 1024 / 44100, abs=1e-5)
    assert abs(total * 1000 - MASTER_MS) < 2 * 1024 / 44.1  # the track's duration within two frames
    playlist_url = f"{CDN}/hls/{'a' * 32}/index.m3u8?exp={exp}&kid=k0&ter=DE&sig=x"
    for k, (_, uri) in enumerate(segments):
        assert uri.startswith(f"{k}.aac?")
        url = urljoin(playlist_url, uri)
        path = unquote(urlsplit(url).path)
        assert path == f"/hls/{'a' * 32}/{k}.aac"
        q = query(url)
        assert (q["exp"], q["kid"], q["ter"]) == (str(exp), "k0", "DE")  # those of the playlist URL
        assert signer.verify(path, q["exp"], q["kid"], q["sig"], now=MINUTE, territory="DE").ok
        assert not signer.verify(f"/audio/{'a' * 32}/{k}", q["exp"], q["kid"], q["sig"], now=MINUTE,
                                 territory="DE").ok


def test_segment_timings_are_exact_frames_or_fall_back_to_milliseconds() -> None:
    timings = hls.segment_timings(rendition())
    assert [t.samples for t in timings] == [n * 1024 for n in FRAMES]
    assert [t.start_sample for t in timings] == [0, 442_368, 883_712]
    assert [t.timestamp(44100) for t in timings] == [0, 902_791, 1_803_493]  # s * 90000 // 44100
    # durations that are no whole number of AAC frames (not cut as ingest cuts): the ms values
    odd = hls.segment_timings(rendition(durations=[10_000, 10_000, 5_300]))
    assert [t.samples for t in odd] == [441_000, 441_000, 233_730]
    text = hls.media_playlist(rendition(durations=[10_000, 10_000, 5_300]), Signer(KEYS), MINUTE)
    assert [tag["value"] for tag, _ in parse(text)[1]] == ["10.000000,", "10.000000,", "5.300000,"]
    long = hls.media_playlist(rendition(durations=[10_031, 12_539]), Signer(KEYS), MINUTE)
    assert "#EXT-X-TARGETDURATION:13" in long  # 12.539 s rounds to 13
    for bad in (rendition(codec="opus"), {**rendition(), "segments": []},
                {**rendition(), "segments": [{"index": 0}, {"index": 1}, {"index": 2}]}):
        with pytest.raises(hls.NotHlsRendition):
            hls.segment_timings(bad)


def test_timestamp_tag_layout_and_round_trip() -> None:
    tag = hls.timestamp_tag(902_791)
    assert len(tag) == 73
    assert tag[:10] == b"ID3\x04\x00\x00\x00\x00\x00\x3f"  # v2.4, no flags, 63 bytes of frames
    assert tag[10:20] == b"PRIV\x00\x00\x00\x35\x00\x00"  # 45 bytes of owner + 8 of timestamp
    assert tag[20:65] == b"com.apple.streaming.transportStreamTimestamp\x00"
    assert tag[65:] == (902_791).to_bytes(8, "big")
    assert hls.parse_timestamp_tag(tag + b"\xff\xf1rest") == (902_791, 73)
    assert hls.parse_timestamp_tag(hls.timestamp_tag((1 << 33) + 5))[0] == 5  # 33 bits: wraps
    for bad in (b"", b"\xff\xf1" * 40, b"ID3\x04\x00\x00\x00\x00\x00\x00"):
        with pytest.raises(ValueError):
            hls.parse_timestamp_tag(bad)


# -- the API's master route ---------------------------------------------------------------------
async def get_text(c: TestClient, path: str, token: dict | None = None) -> tuple[int, str, str, Any]:
    resp = await c.get(path, headers=token or {})
    body = await resp.read()
    data = await resp.json() if resp.content_type == "application/json" else None
    return resp.status, resp.content_type, body.decode(), data


def test_master_route_takes_the_manifest_path() -> None:
    world = World()
    world.feed([*catalog_events(),
                ev("audio.encoded", track_id="t1", file_id="d" * 32, codec="opus", container="ogg", bitrate_kbps=96,
                   sample_rate_hz=48000, segment_ms=10_000, segment_count=3, byte_size=1000,
                   storage_key="audio/" + "d" * 32, loudness_lufs=-14.0, true_peak_dbtp=-3.0),
                ev("audio.encoded", track_id="t2", file_id="e" * 32, codec="opus", container="ogg", bitrate_kbps=96,
                   sample_rate_hz=48000, segment_ms=10_000, segment_count=3, byte_size=1000,
                   storage_key="audio/" + "e" * 32, loudness_lufs=-14.0, true_peak_dbtp=-3.0)])
    signer = Signer({"k1": "secret-one"})

    async def scenario(c: TestClient) -> None:
        status, ctype, text, _ = await get_text(c, "/v1/playback/t1b/hls/master.m3u8", world.token("u1"))
        assert status == 200 and ctype == "application/vnd.apple.mpegurl"
        tags, variants = parse(text)
        play_id = attributes(tags[2].partition(":")[2])
        assert play_id["DATA-ID"] == "com.playlog.play_id" and play_id["VALUE"]
        assert [unquote(urlsplit(u).path) for _, u in variants] == [f"/hls/{f * 32}/index.m3u8" for f in "abc"]
        start = int(NOW) // 60 * 60
        for _, uri in variants:  # signed for the listener's country, on the manifest's expiry grid
            q = query(uri)
            assert (q["exp"], q["ter"]) == (str(start + 3600), "DE")
            assert signer.verify(unquote(urlsplit(uri).path), q["exp"], q["kid"], q["sig"], now=NOW,
                                 territory="DE").ok
        status, _, text, _ = await get_text(c, "/v1/playback/t1/hls/master.m3u8", world.token("u2"))  # free
        assert status == 200 and len(parse(text)[1]) == 2
        # the same refusals as the manifest, with the same bodies
        for user, track in (("u3", "t1"), ("u1", "t3"), ("u1", "nope"), ("u1", "t2"), ("ghost", "t1")):
            got = await get_text(c, f"/v1/playback/{track}/hls/master.m3u8", world.token(user))
            want = await call(c, "GET", f"/v1/playback/{track}/manifest", world.token(user))
            if track == "t2":  # only an Opus rung: a manifest, but nothing for HLS
                assert want[0] == 200 and got[0] == 404
                assert got[3]["error"]["message"] == "No HLS rendition (AAC) of this track for your plan"
                continue
            assert got[0] == want[0] and got[0] in (403, 404) and got[3] == want[1], (user, track, got, want)
        assert (await get_text(c, "/v1/playback/t1/hls/master.m3u8"))[0] == 401
        assert (await call(c, "GET", "/v1/playback/t1/manifest"))[0] == 401

    run_api(world, scenario)


# -- the CDN's HLS objects -----------------------------------------------------------------------
def test_cdn_serves_media_playlists_and_tagged_segments(tmp_path: Path) -> None:
    rng = random.Random(7)
    store = AudioStore.from_data_dir(tmp_path)
    segments = [rng.randbytes(30_000 + 1000 * k) for k in range(3)]
    meta = {key: value for key, value in rendition().items() if key not in ("file_id", "segment_count")}
    meta.update(content_type="audio/aac", bitrate_kbps=96, channels=2)
    file_id = store.put_rendition(segments, meta)["file_id"]
    opus = store.put_rendition([b"OggS" + rng.randbytes(100)],
                               {"codec": "opus", "container": "ogg", "ext": "opus", "content_type": "audio/ogg",
                                "segment_ms": 10_000, "sample_rate_hz": 48000,
                                "segments": [{"start_ms": 0, "duration_ms": 1000}]})["file_id"]
    signer = Signer(KEYS)
    now = MINUTE + 5.0
    exp = MINUTE + 3600

    def signed(path: str, kid: str = "k1", territory: str | None = "DE") -> str:
        return f"{path}?{hls.signed_query(signer, path, exp, kid=kid, territory=territory)}"

    async def main() -> None:
        app = cdn_app.build_app(signer=signer, data_dir=tmp_path, clock=lambda: now)
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            playlist_url = signed(hls.media_playlist_path(file_id), kid="k0")
            resp = await client.get(playlist_url)
            text = await resp.text()
            assert resp.status == 200 and resp.content_type == "application/vnd.apple.mpegurl"
            assert resp.headers["Cache-Control"] == f"public, max-age={exp - int(now)}, immutable"
            _, entries = parse(text)
            assert len(entries) == 3
            for k, (_, uri) in enumerate(entries):
                url = urljoin(playlist_url, uri)
                assert query(url)["kid"] == "k0"  # the CDN signs with the playlist URL's own key
                resp = await client.get(url)
                body = await resp.read()
                assert resp.status == 200 and resp.content_type == "audio/aac"
                ts, n = hls.parse_timestamp_tag(body)
                assert ts == [0, 902_791, 1_803_493][k] and body[n:] == segments[k]
                # Range applies to the tagged bytes
                resp = await client.get(url, headers={"Range": "bytes=60-99"})
                assert resp.status == 206 and resp.headers["Content-Range"] == f"bytes 60-99/{len(body)}"
                assert await resp.read() == body[60:100]
                head = await client.head(url)
                assert head.status == 200 and head.headers["Content-Length"] == str(len(body))
                # the plain segment is unchanged, with another ETag
                raw = await client.get(signer.sign_segment_url("", file_id, k, now=now, territory="DE"))
                assert await raw.read() == segments[k] and raw.headers["ETag"] != head.headers["ETag"]
            # refusals: tampered, another path's signature, unknown objects, Opus, other methods
            q = query(playlist_url)
            assert (await client.get(playlist_url.replace(q["sig"], "A" * 43))).status == 403
            other = signed(hls.segment_path(file_id, 0))
            assert (await client.get(other.replace("/0.aac?", "/1.aac?"))).status == 403
            assert (await client.get(signed(hls.segment_path(file_id, 3)))).status == 404
            assert (await client.get(signed(f"/hls/{file_id}/0.ts"))).status == 404
            assert (await client.get(signed(hls.media_playlist_path(opus)))).status == 404
            assert (await client.get(signed(hls.segment_path(opus, 0)))).status == 404
            assert (await client.post(playlist_url)).status == 405
        finally:
            await client.close()

    asyncio.run(main())
