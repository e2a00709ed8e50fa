"""The OpenSubsonic API (``/rest``) as a stock client library uses it, against real processes.

Scenario: a 14.2 s master is encoded in process through the real ladder (AAC 96/160/320) into the
data dir's audio store; a small catalog (an artist, an album of three tracks: one with that audio,
one with the same audio but blocked in DE, one without audio), users (premium DE, free DE) and rights
are produced with ``playlog produce``; a real ``playlog worker`` folds them into the views and a
``playlog api`` follows them. ``playlog subsonic password u-de`` issues an app password.

We expect, with py-opensonic (a client library from PyPI, POST forms and ``.view`` names by default):
- the password printed as the last line to log in (token + salt) within a few seconds of being issued,
  and as an ``apiKey``; a wrong one refused with code 40;
- search3 to find the song by a word of its title, getAlbumList2 / getAlbum to list the album;
- stream to send the whole-file AAC (byte for byte the stored segments concatenated) which PyAV
  decodes to the master's duration within two AAC frames; a Range request to get exactly that slice;
  the free user's stream to be a rung of at most 160 kbps;
- scrobble to put play.started and play.completed of one server-issued play on the listening topic,
  with the user's country and product, ``received_at`` stamped and ``ms_played`` bounded by the time
  the grant was issued;
- stream of the track blocked in DE to be refused with code 50 (the library raises its AuthError);
- ``playlog subsonic revoke`` to make a password fail within a few seconds.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode
from xml.etree import ElementTree

import av
import libopensonic  # py-opensonic, the client library under test (the dev extra)
import pytest

from devstack.supervisor import Child, Supervisor, free_port
from ingest.ladder import encode_rung
from ingest.masters import audio_event
from ingest.store import AudioStore
from ingest.synthetic import render_master, write_wav
from playback import auth
from schemas.codec import default_codec
from tests.support.playback_procs import (
    PLAYLOG,
    base_env,
    http,
    json_of,
    read_topic,
    run_playlog,
    tail,
    wait_until,
)

TOKEN_SECRET = "subsonic-test-token-secret-0123456789"
PII_KEY = "subsonic-test-pii-master-key-0123456789"
T0 = "2026-01-01T00:00:00Z"
MASTER_MS = 14_200
RATE = 44_100
FRAME_MS = 1024 * 1000 / RATE
RUNGS = ("aac-96", "aac-160", "aac-320")
AUDIO, BLOCKED, SILENT = "trk-ss-audio", "trk-ss-blocked", "trk-ss-silent"
ISSUE_BOUND_S = 15.0  # the CLI's event -> worker fold -> view.credentials -> the API's replica


@dataclass
class Stack:
    env: dict[str, str]
    root: Path
    data: Path
    api_port: int
    prefix: str
    bootstrap: str
    store: AudioStore
    renditions: dict[str, dict]
    procs: Supervisor

    def logs(self) -> str:
        return "\n".join(f"--- {n}.log\n{tail(self.root / f'{n}.log')}" for n in ("worker", "api"))

    def password(self, user: str) -> str:
        proc = run_playlog(self.env, "subsonic", "password", user)
        lines = proc.stdout.strip().splitlines()
        assert lines, proc.stderr
        return lines[-1]

    def client(self, user: str | None = None, password: str | None = None, **kw: object) -> object:
        return libopensonic.Connection("http://127.0.0.1", username=user, password=password, port=self.api_port,
                                       app_name="pytest", **kw)

    def rest(self, method: str, **params: str) -> tuple[int, dict, bytes]:
        return http("GET", self.api_port, f"/rest/{method}?{urlencode(params)}")


def _catalog(renditions: dict[str, dict]) -> list[dict]:
    n = iter(range(1000))

    def ev(etype: str, **fields: object) -> dict:
        return {"type": etype, "event_id": f"ss-{next(n)}", "occurred_at": T0, **fields}

    def track(track_id: str, title: str, isrc: str, duration_ms: int) -> dict:
        return ev("track.ingested", track_id=track_id, isrc=isrc, title=title, album_id="al-ss", artist_ids=["ar-ss"],
                  duration_ms=duration_ms, genres=["ambient"], explicit=False, distributor="d",
                  rightsholders=[{"rightsholder_id": "rh", "share_ppm": 1_000_000}])

    codec = default_codec()
    events = [
        ev("artist.ingested", artist_id="ar-ss", name="The Oscillators", genres=["ambient"]),
        ev("album.ingested", album_id="al-ss", title="Square Waves", artist_ids=["ar-ss"], release_date="2025-11-07",
           label="Test Label", artwork_uri=None),
        track(AUDIO, "Harmonic Meadow", "ISRCSS00001", MASTER_MS),
        track(BLOCKED, "Forbidden Tide", "ISRCSS00002", MASTER_MS),
        track(SILENT, "Quiet Nothing", "ISRCSS00003", 60_000),
    ]
    for t in (AUDIO, BLOCKED):
        events += [codec.to_json(audio_event(t, m, f"ss-enc-{t}-{name}", 1_767_225_600_000))
                   for name, m in renditions.items()]
    events += [ev("rights.changed", track_id=t, territory="DE", allowed=t != BLOCKED, valid_from=None, valid_to=None)
               for t in (AUDIO, BLOCKED, SILENT)]
    events += [ev("user.registered", user_id="u-de", country="DE", product="premium", display_name="De"),
               ev("user.registered", user_id="u-free", country="DE", product="free", display_name="Free"),
               ev("user.registered", user_id="u-rev", country="DE", product="premium", display_name="Rev")]
    return events


@pytest.fixture(scope="module")
def stack(kafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("subsonic")
    data = root / "data"
    prefix = f"ss{os.getpid()}."
    api_port = free_port()
    env = base_env(PLAYLOG_BOOTSTRAP_SERVERS=kafka.bootstrap, PLAYLOG_TOPIC_PREFIX=prefix, PLAYLOG_DATA_DIR=str(data),
                   PLAYLOG_API_PORT=str(api_port), PLAYLOG_TOKEN_SECRET=TOKEN_SECRET, PLAYLOG_PII_MASTER_KEY=PII_KEY,
                   PLAYLOG_LOG_LEVEL="WARNING")
    run_playlog(env, "topics", "create")
    master = root / "master.wav"
    write_wav(master, render_master(MASTER_MS, -16.0, seed=5, sample_rate=RATE), RATE)
    sha = hashlib.sha256(master.read_bytes()).hexdigest()
    renditions = {name: encode_rung(str(master), name, 5_000, str(data / "audio"), sha) for name in RUNGS}
    events = root / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in _catalog(renditions)))
    run_playlog(env, "produce", str(events))
    procs = Supervisor()
    procs.add(Child("worker", [PLAYLOG, "worker", "--web-port", str(free_port())], env, root / "worker.log").start())
    procs.add(Child("api", [PLAYLOG, "api"], env, root / "api.log").start())
    s = Stack(env, root, data, api_port, prefix, kafka.bootstrap, AudioStore.from_data_dir(data), renditions, procs)
    try:
        token = auth.issue_token("u-de", TOKEN_SECRET, now=time.time(), ttl=3600)

        def ready() -> bool:
            assert not procs.dead(), s.logs()
            try:
                status, _, body = http("GET", api_port, f"/v1/tracks/{AUDIO}", token=token)
            except OSError:
                return False
            doc = json_of(body) or {}
            return status == 200 and doc.get("has_audio") and doc.get("is_playable") is True

        wait_until("the worker's views to reach the API", ready, timeout=120, on_timeout=s.logs)
        yield s
    finally:
        procs.stop()


@pytest.fixture(scope="module")
def login(stack: Stack) -> tuple[str, float]:
    """An app password of u-de from the CLI, and the seconds until the API accepted it."""
    password = stack.password("u-de")
    issued = time.monotonic()
    client = stack.client("u-de", password)
    try:
        def accepted() -> bool:
            try:
                return client.ping()
            except libopensonic.errors.CredentialError:
                return False

        wait_until("the app password to be accepted", accepted, timeout=ISSUE_BOUND_S, every=0.1,
                   on_timeout=stack.logs)
    finally:
        client.cleanup()
    return password, time.monotonic() - issued


def _decoded_ms(data: bytes) -> float:
    with av.open(io.BytesIO(data), format="aac") as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples * 1000 / stream.codec_context.sample_rate


def test_client_logs_in_searches_lists_albums_streams_and_scrobbles(stack: Stack, login: tuple[str, float]) -> None:
    password, took = login
    assert took < ISSUE_BOUND_S
    client = stack.client("u-de", password)
    try:
        assert client.ping() is True
        found = client.search3("meadow")
        assert [s.id for s in found.song or []] == [AUDIO]
        assert found.song[0].album == "Square Waves" and found.song[0].artist == "The Oscillators"
        albums = client.get_album_list2("alphabeticalByName", size=50)
        assert "al-ss" in [a.id for a in albums]
        album = client.get_album("al-ss")
        assert album.name == "Square Waves" and album.song_count == 3
        assert sorted(s.id for s in album.song) == sorted([AUDIO, BLOCKED, SILENT])

        top = stack.renditions["aac-320"]
        whole = b"".join(stack.store.segment_path(top["file_id"], k).read_bytes() for k in range(top["segment_count"]))
        response = client.stream(AUDIO)
        assert response.status == 200 and response.headers["Content-Type"].startswith("audio/aac")
        body = _read(client, response)
        assert body == whole  # premium, no maxBitRate: the top AAC rung, whole
        assert abs(_decoded_ms(body) - MASTER_MS) <= 2 * FRAME_MS
        part = client.stream(AUDIO, byte_range="bytes=1000-40999")
        assert part.status == 206 and part.headers["Content-Range"] == f"bytes 1000-40999/{len(whole)}"
        assert _read(client, part) == whole[1000:41000]
        capped = _read(client, client.stream(AUDIO, max_bit_rate=160))
        assert hashlib.sha256(capped).hexdigest() == stack.renditions["aac-160"]["sha256"]

        started = time.time() * 1000
        assert client.scrobble(AUDIO) is True
    finally:
        client.cleanup()
    codec = default_codec()

    def plays() -> list[dict]:
        events = [codec.decode(m.value()) for m in read_topic(stack.bootstrap, stack.prefix + "listening")]
        return [e for e in events if e["user_id"] == "u-de" and e["track_id"] == AUDIO]

    got = wait_until("the scrobbled play on the listening topic",
                     lambda: (p := plays()) and any(e["type"] == "play.completed" for e in p) and p, timeout=30)
    types = sorted(e["type"] for e in got)
    assert types == ["play.completed", "play.started"]  # one play: the range requests and the retry reused it
    assert len({e["play_id"] for e in got}) == 1 and got[0]["play_id"].startswith("g1.")
    for e in got:
        assert (e["country"], e["product"]) == ("DE", "premium") and e["received_at"] is not None
    completed = next(e for e in got if e["type"] == "play.completed")
    issued_ms = int(completed["play_id"].split(".")[1])
    assert 0 <= completed["ms_played"] <= min(MASTER_MS, completed["received_at"] - issued_ms)
    assert completed["received_at"] >= started - 1000


def _read(client: object, response: object) -> bytes:
    import asyncio

    async def body() -> bytes:
        return await response.read()

    return asyncio.run_coroutine_threadsafe(body(), client._loop).result(timeout=30)


def test_track_blocked_in_the_users_country_is_refused(stack: Stack, login: tuple[str, float]) -> None:
    password, _ = login
    client = stack.client(api_key=password)  # the OpenSubsonic apiKey
    try:
        assert client.ping() is True
        with pytest.raises(libopensonic.errors.AuthError, match="not licensed in DE"):
            client.stream(BLOCKED)
        with pytest.raises(libopensonic.errors.DataNotFoundError):
            client.stream(SILENT)  # no audio encoded
        with pytest.raises(libopensonic.errors.DataNotFoundError):
            client.get_song("no-such-track")
    finally:
        client.cleanup()
    status, _, body = stack.rest("stream.view", u="u-de", p="enc:" + password.encode().hex(), v="1.16.1", c="t",
                                 id=BLOCKED)
    assert status == 200
    root = ElementTree.fromstring(body)
    assert root.get("status") == "failed" and root[0].get("code") == "50"


def test_free_tier_streams_at_most_160_kbps_and_wrong_credentials_are_40(stack: Stack) -> None:
    password = stack.password("u-free")
    client = stack.client("u-free", password, use_get=True, use_views=False)
    try:
        wait_until("u-free's password", lambda: _pings(client), timeout=ISSUE_BOUND_S, every=0.1)
        body = _read(client, client.stream(AUDIO))
        assert hashlib.sha256(body).hexdigest() == stack.renditions["aac-160"]["sha256"]
        assert client.get_user("u-free").max_bit_rate == 160
    finally:
        client.cleanup()
    wrong = stack.client("u-free", password + "x")
    try:
        with pytest.raises(libopensonic.errors.CredentialError):
            wrong.ping()
    finally:
        wrong.cleanup()


def _pings(client: object) -> bool:
    try:
        return client.ping()
    except libopensonic.errors.CredentialError:
        return False


def test_revoked_password_stops_working(stack: Stack) -> None:
    password = stack.password("u-rev")
    client = stack.client("u-rev", password)
    try:
        wait_until("u-rev's password", lambda: _pings(client), timeout=ISSUE_BOUND_S, every=0.1)
        run_playlog(stack.env, "subsonic", "revoke", "u-rev")
        wait_until("the revocation", lambda: not _pings(client), timeout=ISSUE_BOUND_S, every=0.1)
    finally:
        client.cleanup()
