"""HLS over real HTTP: PyAV (ffmpeg's HLS demuxer) plays the master playlist of a running API + CDN.

Scenario: a 25.3 s master is encoded in process through the real ladder (AAC 96/160/320 and Opus 96)
into the data dir's audio store; the view documents the worker would publish for that track, its
rights (allowed in DE, blocked in US) and three users (premium DE, free DE, premium US) are written to
the view topics of a real broker; ``playlog api`` and ``playlog cdn`` processes are started on them.

We expect:
- ffmpeg to open the master playlist (``Authorization`` passed through ``av.open`` options), one
  program per AAC rung (Opus left out), and to decode a rung to the track's duration within two AAC
  frames (the encoder's priming frame and padding);
- every media playlist and its segments to play with no ``Authorization`` header at all (ffmpeg
  opening the signed CDN playlist URL directly), every segment to start with the packed-audio ID3
  timestamp, contiguous across segments, followed by exactly the stored ADTS bytes; the media
  playlist URL refused once its signature is removed or edited;
- the free tier's master to list only the rungs up to 160 kbps;
- a listener in the blocked country to get from the master the very refusal the manifest gives
  (403, same body), which ffmpeg reports as HTTP 403; no token: 401.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import av
import pytest

from devstack.supervisor import Child, free_port
from ingest.ladder import encode_rung, split_adts
from ingest.masters import audio_event
from ingest.store import AudioStore
from ingest.synthetic import render_master, write_wav
from playback import auth, hls
from tests.support.playback_procs import (
    PLAYLOG,
    RawProducer,
    base_env,
    http,
    json_of,
    run_playlog,
    tail,
    view_docs,
    wait_until,
)

TOKEN_SECRET = "hls-test-token-secret-0123456789"
SIGNING_KEYS = "h1:hls-test-signing-key-0123456789"
T0 = 1_767_225_600_000  # 2026-01-01
TRACK = "trk-hls"
MASTER_MS = 25_300
RATE = 44_100
FRAME_MS = 1024 * 1000 / RATE
RUNGS = ("aac-96", "aac-160", "aac-320", "opus-96")


def ev(etype: str, n: list[int] = [0], **fields) -> dict:  # noqa: B006 - a counter
    n[0] += 1
    return {"type": etype, "event_id": f"hls-{n[0]}", "occurred_at": T0, **fields}


@dataclass
class Stack:
    api_port: int
    cdn_port: int
    store: AudioStore
    renditions: dict[str, dict]  # rung name -> its stored manifest
    logs: tuple[Path, ...]

    def token(self, user: str) -> str:
        return auth.issue_token(user, TOKEN_SECRET, now=time.time(), ttl=3600)

    def api(self, path: str, user: str | None) -> tuple[int, dict, bytes]:
        return http("GET", self.api_port, path, token=self.token(user) if user else None)

    def cdn(self, url: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
        parts = urlsplit(url)
        assert parts.port == self.cdn_port
        return http("GET", self.cdn_port, f"{parts.path}?{parts.query}", headers=headers)

    def master_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/v1/playback/{TRACK}/hls/master.m3u8"

    def variants(self, user: str) -> list[str]:
        status, headers, body = self.api(f"/v1/playback/{TRACK}/hls/master.m3u8", user)
        assert status == 200 and headers["content-type"].startswith("application/vnd.apple.mpegurl"), body[:300]
        lines = body.decode().splitlines()
        assert lines[0] == "#EXTM3U"
        return [line for prev, line in zip(lines, lines[1:], strict=False) if prev.startswith("#EXT-X-STREAM-INF:")]

    def file_ids(self, names: tuple[str, ...]) -> list[str]:
        return [self.renditions[n]["file_id"] for n in names]

    def log_tails(self) -> str:
        return "\n".join(f"--- {p.name}\n{tail(p)}" for p in self.logs)


def _write_views(bootstrap: str, prefix: str, renditions: dict[str, dict]) -> None:
    events = [
        ev("track.ingested", track_id=TRACK, isrc="ISRCHLS0001", title="Packed Audio", album_id="al-hls",
           artist_ids=["ar-hls"], duration_ms=MASTER_MS, genres=["pop"], explicit=False, distributor="d",
           rightsholders=[{"rightsholder_id": "rh", "share_ppm": 1_000_000}]),
        *(audio_event(TRACK, m, f"hls-audio-{name}", T0) for name, m in renditions.items()),
        ev("rights.changed", track_id=TRACK, territory="DE", allowed=True, valid_from=None, valid_to=None),
        ev("rights.changed", track_id=TRACK, territory="US", allowed=False, valid_from=None, valid_to=None),
        ev("user.registered", user_id="u-de", country="DE", product="premium", display_name="De"),
        ev("user.registered", user_id="u-free", country="DE", product="free", display_name="Free"),
        ev("user.registered", user_id="u-us", country="US", product="premium", display_name="Us"),
    ]
    producer = RawProducer(bootstrap)
    for (view, key), doc in view_docs(events).items():
        producer.send_doc(f"{prefix}view.{view}", key, doc)
    producer.flush()


@pytest.fixture(scope="module")
def stack(kafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("hls")
    data = root / "data"
    prefix = f"hls{os.getpid()}."
    api_port, cdn_port = free_port(), free_port()
    env = base_env(PLAYLOG_BOOTSTRAP_SERVERS=kafka.bootstrap, PLAYLOG_TOPIC_PREFIX=prefix,
                   PLAYLOG_DATA_DIR=str(data), PLAYLOG_API_PORT=str(api_port), PLAYLOG_CDN_PORT=str(cdn_port),
                   PLAYLOG_CDN_BASE_URL=f"http://127.0.0.1:{cdn_port}", PLAYLOG_TOKEN_SECRET=TOKEN_SECRET,
                   PLAYLOG_SIGNING_KEYS=SIGNING_KEYS, PLAYLOG_LOG_LEVEL="WARNING")
    run_playlog(env, "topics", "create")
    master = root / "master.wav"
    write_wav(master, render_master(MASTER_MS, -16.0, seed=11, sample_rate=RATE), RATE)
    sha = hashlib.sha256(master.read_bytes()).hexdigest()
    renditions = {name: encode_rung(str(master), name, 10_000, str(data / "audio"), sha) for name in RUNGS}
    _write_views(kafka.bootstrap, prefix, renditions)
    logs = (root / "cdn.log", root / "api.log")
    cdn = Child("cdn", [PLAYLOG, "cdn"], env, logs[0], health_url=f"http://127.0.0.1:{cdn_port}/healthz").start()
    api = Child("api", [PLAYLOG, "api"], env, logs[1]).start()
    handle = Stack(api_port, cdn_port, AudioStore.from_data_dir(data), renditions, logs)
    try:
        def ready() -> bool:
            assert api.alive() and cdn.alive(), handle.log_tails()
            try:
                api_ok = http("GET", api_port, "/healthz")[0] == 200
                status, _, body = http("GET", cdn_port, "/healthz")
            except OSError:
                return False
            return api_ok and status == 200 and json_of(body)["takedowns"]["ready"] is True

        wait_until("the API and the CDN to follow the views", ready, timeout=60, on_timeout=handle.log_tails)
        yield handle
    finally:
        api.stop()
        cdn.stop()


def decoded(url: str, options: dict[str, str] | None = None, stream_index: int | None = None) -> tuple[int, int, int]:
    """(samples, sample rate, channels) ffmpeg decodes from ``url`` (one audio stream of it)."""
    with av.open(url, options=options or {}, timeout=20) as container:
        assert container.format.name == "hls"
        streams = container.streams.audio
        stream = streams[stream_index if stream_index is not None else -1]
        samples = 0
        for frame in container.decode(stream):
            samples += frame.samples
        return samples, stream.codec_context.sample_rate, stream.codec_context.channels


def assert_track_duration(samples: int, rate: int) -> None:
    ms = samples * 1000 / rate
    assert abs(ms - MASTER_MS) <= 2 * FRAME_MS, f"decoded {ms:.1f} ms, the track is {MASTER_MS} ms"


def test_ffmpeg_plays_the_master_playlist_over_http(stack: Stack) -> None:
    headers = f"Authorization: Bearer {stack.token('u-de')}\r\n"
    with av.open(stack.master_url(), options={"headers": headers}, timeout=20) as container:
        assert container.format.name == "hls"
        bitrates = sorted(int(s.metadata["variant_bitrate"]) for s in container.streams.audio)
        assert len(bitrates) == 3 and bitrates[0] >= 96_000 and bitrates[-1] >= 320_000  # AAC only
        assert all(s.codec_context.name == "aac" for s in container.streams.audio)
    samples, rate, channels = decoded(stack.master_url(), {"headers": headers})  # the top rung
    assert (rate, channels) == (RATE, 2)
    assert_track_duration(samples, rate)
    # the master itself needs the token
    with pytest.raises(av.error.HTTPUnauthorizedError):
        av.open(stack.master_url(), timeout=20)


def test_media_playlists_and_segments_play_without_authorization(stack: Stack) -> None:
    variants = stack.variants("u-de")
    assert [urlsplit(v).path for v in variants] == [f"/hls/{f}/index.m3u8" for f in
                                                      stack.file_ids(("aac-96", "aac-160", "aac-320"))]
    for name, url in zip(("aac-96", "aac-160", "aac-320"), variants, strict=True):
        rendition = stack.renditions[name]
        file_id = rendition["file_id"]
        samples, rate, _ = decoded(url)  # ffmpeg, no headers: the signed URL is the credential
        assert_track_duration(samples, rate)
        status, headers, body = stack.cdn(url)
        assert status == 200 and headers["content-type"] == "application/vnd.apple.mpegurl"
        uris = [line for line in body.decode().splitlines() if line and not line.startswith("#")]
        extinf = [float(line[8:].rstrip(",")) for line in body.decode().splitlines() if line.startswith("#EXTINF:")]
        assert len(uris) == len(extinf) == rendition["segment_count"]
        assert sum(extinf) == pytest.approx(samples / rate, abs=1e-4)  # the playlist says what decodes
        first_sample = 0  # of the segment, on the ADTS stream's timeline
        for k, uri in enumerate(uris):
            status, headers, seg = stack.cdn(urljoin(url, uri))
            assert status == 200 and headers["content-type"] == "audio/aac"
            ts, n = hls.parse_timestamp_tag(seg)
            assert seg[n:] == stack.store.segment_path(file_id, k).read_bytes()
            assert ts == first_sample * 90_000 // RATE, (name, k)  # contiguous, to the 90 kHz tick
            frames = len(split_adts(seg[n:]))  # the segment's real length, from its bytes
            assert extinf[k] == pytest.approx(frames * 1024 / RATE, abs=1e-6)
            first_sample += frames * 1024
            lo, hi = 50, 50 + len(seg) // 3
            status, headers, part = stack.cdn(urljoin(url, uri), {"Range": f"bytes={lo}-{hi}"})
            assert status == 206 and headers["content-range"] == f"bytes {lo}-{hi}/{len(seg)}"
            assert part == seg[lo : hi + 1]
        # no open door: without its signature, or with it edited, the playlist is refused
        parts = urlsplit(url)
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        unsigned = f"{parts.scheme}://{parts.netloc}{parts.path}?" + urlencode({"exp": q["exp"], "kid": q["kid"]})
        later = f"{parts.scheme}://{parts.netloc}{parts.path}?" + urlencode({**q, "exp": int(q["exp"]) + 60})
        for bad in (unsigned, later):
            status, _, body = stack.cdn(bad)
            assert status == 403 and json.loads(body)["error"]["status"] == 403
    opus = stack.renditions["opus-96"]["file_id"]
    assert all(opus not in v for v in variants)


def test_free_tier_master_lists_rungs_up_to_160_kbps(stack: Stack) -> None:
    variants = stack.variants("u-free")
    assert [urlsplit(v).path.split("/")[2] for v in variants] == stack.file_ids(("aac-96", "aac-160"))
    samples, rate, _ = decoded(variants[-1])
    assert_track_duration(samples, rate)


def test_blocked_country_gets_the_same_refusal_as_the_manifest(stack: Stack) -> None:
    status, _, body = stack.api(f"/v1/playback/{TRACK}/hls/master.m3u8", "u-us")
    m_status, _, m_body = stack.api(f"/v1/playback/{TRACK}/manifest", "u-us")
    assert status == m_status == 403
    assert json.loads(body) == json.loads(m_body)
    assert "not licensed in US" in json.loads(body)["error"]["message"]
    with pytest.raises(av.error.HTTPForbiddenError):
        av.open(stack.master_url(), options={"headers": f"Authorization: Bearer {stack.token('u-us')}\r\n"},
                timeout=20)
    assert stack.api(f"/v1/playback/{TRACK}/hls/master.m3u8", None)[0] == 401
