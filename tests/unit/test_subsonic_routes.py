"""``/rest`` in process (aiohttp test server) over a replica fed by the real folds (the fake worker of
tests/unit/test_api_routes.py): the error model, writes as events with read-your-writes, the scrobble
trust path, and the whole-file stream's ranges.

Expected values are computed here from the inputs: the bytes a stream must send are the stored segments
concatenated; ``ms_played`` of a scrobble is the time the test clock moved since the play was issued;
play events must pass the client-event rule every reader applies (processors/grants.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from ingest.store import AudioStore
from playback.api import PlaybackApi
from playback.subsonic.auth import token_of
from playback.subsonic.context import METHODS
from playback.subsonic.secrets import PasswordBox
from processors.grants import client_event_reason, parse_grant
from tests.unit import test_api_routes as base
from tests.unit.test_api_routes import ev, run

MASTER = "routes-test-pii-master-key"
PASSWORD = "app-password-of-u1"
FREE_PASSWORD = "app-password-of-u2"
US_PASSWORD = "app-password-of-u3"


class World(base.World):
    def __init__(self, data_dir: Path) -> None:
        super().__init__()
        settings = dataclasses.replace(base.SETTINGS, data_dir=data_dir, pii_master_key=MASTER)
        self.api = PlaybackApi(settings, self.replica, self.publisher, clock=lambda: self.now)
        self.store = AudioStore.from_data_dir(data_dir)

    def produced(self, etype: str) -> list[dict]:
        return [e for e in self.publisher.events if e["type"] == etype]


def rendition(store: AudioStore, kbps: int, seed: int, codec: str = "aac") -> tuple[dict, bytes]:
    rng = random.Random(seed)
    segments = [rng.randbytes(20_000 + 137 * k) for k in range(3)]
    meta = {"codec": codec, "container": "adts" if codec == "aac" else "ogg", "ext": "aac" if codec == "aac" else "opus",
            "content_type": "audio/aac", "bitrate_kbps": kbps, "segment_ms": 10_000, "sample_rate_hz": 44100}
    manifest = store.put_rendition(segments, meta)
    event = ev("audio.encoded", track_id="ts", file_id=manifest["file_id"], codec=codec, container=meta["container"],
               bitrate_kbps=kbps, sample_rate_hz=44100, segment_ms=10_000, segment_count=3,
               byte_size=manifest["byte_size"], storage_key=f"audio/{manifest['file_id']}", loudness_lufs=-14.0,
               true_peak_dbtp=-1.0)
    return event, b"".join(segments)


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path / "data")
    box = PasswordBox(MASTER)
    w.feed(base.catalog_events())
    events = [base.track("ts", "Streamed Song", "ISRCTS", album="al1"), base.rights("ts", "DE")]
    w.bodies = {}
    for kbps, seed in ((96, 1), (160, 2), (320, 3)):
        event, body = rendition(w.store, kbps, seed)
        events.append(event)
        w.bodies[kbps] = body
    for user, pw in (("u1", PASSWORD), ("u2", FREE_PASSWORD), ("u3", US_PASSWORD), ("ghost", "ghost-password")):
        events.append(ev("app_password.issued", user_id=user, password_id=f"p-{user}",
                         ciphertext=box.seal(user, f"p-{user}", pw)))
    w.feed(events)
    return w


def creds(user: str = "u1", password: str = PASSWORD, **extra: str) -> dict[str, str]:
    salt = "s4lt"
    return {"u": user, "t": token_of(password, salt), "s": salt, "v": "1.16.1", "c": "unit", "f": "json", **extra}


async def rest(client: TestClient, method: str, params: Any = None, *, http: str = "GET", data: Any = None,
               headers: dict | None = None) -> tuple[int, dict | None, Any]:
    resp = await client.request(http, f"/rest/{method}", params=params, data=data, headers=headers or {})
    raw = await resp.read()
    doc = None
    if resp.content_type == "application/json":
        doc = json.loads(raw)["subsonic-response"]
    return resp.status, doc, (resp, raw)


def code_of(doc: dict | None) -> int | None:
    assert doc is not None
    return doc["error"]["code"] if doc["status"] == "failed" else None


# -- the error model ---------------------------------------------------------------------------------
def test_every_method_wants_credentials_but_the_extensions(world: World) -> None:
    async def scenario(client: TestClient) -> None:
        for m in METHODS.values():
            status, doc, _ = await rest(client, f"{m.name}.view", {"f": "json"})
            if m.public:
                assert status == 200 and doc["status"] == "ok", m.name
            else:
                assert status == 200 and code_of(doc) == 10, m.name

    run(world, scenario)


def test_unknown_methods_other_http_methods_and_catching_up(world: World) -> None:
    async def scenario(client: TestClient) -> None:
        status, doc, _ = await rest(client, "noSuchThing", creds())
        assert status == 404 and code_of(doc) == 0
        status, doc, _ = await rest(client, "a/b", creds())
        assert status == 404 and code_of(doc) == 0
        status, doc, (resp, _) = await rest(client, "ping", creds(), http="PUT")
        assert status == 405 and code_of(doc) == 0 and resp.headers["Allow"] == "GET, HEAD, POST"
        world.replica.feed._stop.set()  # a feed that started and has not caught up
        status, doc, (resp, _) = await rest(client, "ping", creds())
        assert status == 503 and code_of(doc) == 0 and resp.headers["Retry-After"] == "5"
        status, doc, _ = await rest(client, "ping", creds(v="2.0.0"))
        assert code_of(doc) == 30

    run(world, scenario)


def test_formats_form_posts_and_auth_schemes(world: World) -> None:
    async def scenario(client: TestClient) -> None:
        status, _, (resp, raw) = await rest(client, "ping.view", {**creds(), "f": "xml"})
        root = ElementTree.fromstring(raw)
        assert status == 200 and resp.content_type == "application/xml" and root.get("status") == "ok"
        status, _, (resp, raw) = await rest(client, "ping", {**creds(), "f": "jsonp", "callback": "cb"})
        assert raw.startswith(b"cb(") and resp.content_type == "application/javascript"
        status, doc, _ = await rest(client, "ping.view", http="POST", data=creds())  # form-encoded, as py-opensonic
        assert doc["status"] == "ok"
        form = FormData()
        for k, v in creds().items():
            form.add_field(k, v)
        status, doc, _ = await rest(client, "Ping.View", http="POST", data=form)  # multipart
        assert doc["status"] == "ok"
        status, doc, _ = await rest(client, "ping", {"apiKey": PASSWORD, "f": "json"})
        assert doc["status"] == "ok"
        status, doc, _ = await rest(client, "tokenInfo", {"apiKey": PASSWORD, "f": "json"})
        assert doc["tokenInfo"] == {"username": "u1"}
        assert code_of((await rest(client, "ping", {"apiKey": PASSWORD, "u": "u1", "f": "json"}))[1]) == 43
        assert code_of((await rest(client, "ping", {"apiKey": "wrong", "f": "json"}))[1]) == 44
        assert code_of((await rest(client, "ping", creds(password="wrong")))[1]) == 40
        assert code_of((await rest(client, "ping", {"u": "u1", "p": "enc:" + PASSWORD.encode().hex(),
                                                    "f": "json"}))[1]) is None
        status, doc, _ = await rest(client, "ping", {"f": "json"}, http="POST", data=b'{"u": "u1"}',
                                    headers={"Content-Type": "application/json"})
        assert status == 200 and code_of(doc) == 10  # not a form: no parameters
        assert code_of((await rest(client, "getUser", creds(username="u2")))[1]) == 50

    run(world, scenario)


JUNK = [{"id": "x" * 300}, {"id": ""}, {"id": "t1", "size": "-1"}, {"type": "bogus"}, {"type": "byYear"},
        {"type": "byGenre"}, {"id": "t1", "submission": "maybe"}, {"query": "\x00\x01"}, {"query": '"'},
        {"id": "ts", "position": "1e9"}, {"playlistId": "nope", "songIndexToRemove": "99"},
        {"id": "ts", "maxBitRate": "abc"}, {"id": "ts", "time": "-5"}, {"id": "ts", "current": "t2"},
        {"name": "", "songId": "nope"}, {"size": "99999"}, {"artistCount": "x"}, {"id": "al-"}, {"username": "\n"}]


def test_malformed_requests_never_get_a_500(world: World) -> None:
    async def scenario(client: TestClient) -> None:
        for m in METHODS.values():
            for junk in JUNK:
                status, doc, (resp, raw) = await rest(client, m.name, {**creds(), **junk})
                assert status in (200, 206), (m.name, junk, status, raw[:200])
                if resp.content_type == "application/json":
                    assert doc["status"] in ("ok", "failed"), (m.name, junk)
                else:
                    assert resp.content_type in ("audio/aac", "image/png"), (m.name, junk)

    run(world, scenario)


# -- writes are events, read back at once ------------------------------------------------------------
def test_star_unstar_and_starred2_read_your_writes(world: World) -> None:
    async def scenario(client: TestClient) -> None:
        status, doc, _ = await rest(client, "star", [*creds().items(), ("id", "t1b"), ("id", "al1"),
                                                     ("artistId", "ar2")])
        assert doc["status"] == "ok"
        stars = world.produced("library.starred")
        assert [(e["item_type"], e["item_id"]) for e in stars] == [("track", "t1"), ("album", "al1"), ("artist", "ar2")]
        _, doc, _ = await rest(client, "getStarred2", creds())
        got = doc["starred2"]
        assert [s["id"] for s in got["song"]] == ["t1"] and [a["id"] for a in got["album"]] == ["al1"]
        assert [a["id"] for a in got["artist"]] == ["ar2"] and got["song"][0]["starred"]
        world.deliver()  # the worker's document arrives: the overlay drains, the answer stays
        assert not world.replica.pending_library
        world.now += 1
        await rest(client, "unstar", {**creds(), "albumId": "al1"})
        _, doc, _ = await rest(client, "getStarred2", creds())
        assert doc["starred2"]["album"] == [] and [s["id"] for s in doc["starred2"]["song"]] == ["t1"]
        assert code_of((await rest(client, "star", {**creds(), "id": "nope"}))[1]) == 70
        assert code_of((await rest(client, "star", creds()))[1]) == 10

    run(world, scenario)


def test_playlists_create_update_delete(world: World) -> None:
    async def scenario(client: TestClient) -> None:
        _, doc, _ = await rest(client, "createPlaylist", [*creds().items(), ("name", "Road"), ("songId", "t1"),
                                                          ("songId", "t2"), ("songId", "t3")])
        pid = doc["playlist"]["id"]
        assert [e["id"] for e in doc["playlist"]["entry"]] == ["t1", "t2", "t3"] and doc["playlist"]["owner"] == "u1"
        await rest(client, "updatePlaylist", [*creds().items(), ("playlistId", pid), ("name", "Road trip"),
                                              ("public", "True"), ("songIndexToRemove", "1"), ("songIdToAdd", "ts")])
        _, doc, _ = await rest(client, "getPlaylist", {**creds(), "id": pid})
        assert doc["playlist"]["name"] == "Road trip" and doc["playlist"]["public"] is True
        assert [e["id"] for e in doc["playlist"]["entry"]] == ["t1", "t3", "ts"]
        _, doc, _ = await rest(client, "getPlaylists", creds())
        assert [p["id"] for p in doc["playlists"]["playlist"]] == [pid] and doc["playlists"]["playlist"][0]["songCount"] == 3
        assert code_of((await rest(client, "deletePlaylist", {**creds("u2", FREE_PASSWORD), "id": pid}))[1]) == 50
        assert code_of((await rest(client, "updatePlaylist", {**creds("u2", FREE_PASSWORD), "playlistId": pid,
                                                               "songIdToAdd": "t1"}))[1]) == 50
        world.deliver()
        await rest(client, "deletePlaylist", {**creds(), "id": pid})
        assert code_of((await rest(client, "getPlaylist", {**creds(), "id": pid}))[1]) == 70
        world.deliver()
        assert code_of((await rest(client, "getPlaylist", {**creds(), "id": pid}))[1]) == 70
        status, _ = await base.call(client, "GET", f"/v1/playlists/{pid}", world.token("u1"))
        assert status == 404  # /v1 sees the same deletion
        _, doc, _ = await rest(client, "getPlaylists", creds())
        assert doc["playlists"]["playlist"] == []
        assert [e["type"] for e in world.publisher.events if e["type"].startswith("playlist.")] == [
            "playlist.created", "playlist.tracks_added", "playlist.details_changed", "playlist.tracks_removed",
            "playlist.tracks_added", "playlist.deleted"]

    run(world, scenario)


def test_play_queue_is_the_shared_player(world: World) -> None:
    async def scenario(client: TestClient) -> None:
        _, doc, _ = await rest(client, "getPlayQueue", creds())
        assert doc["playQueue"]["username"] == "u1" and "entry" not in doc["playQueue"]
        await rest(client, "savePlayQueue", [*creds(c="My Phone").items(), ("id", "t1"), ("id", "t2"), ("id", "ts"),
                                             ("current", "t2"), ("position", "4200")])
        world.now += 30  # paused: the position does not move
        _, doc, _ = await rest(client, "getPlayQueue", creds())
        q = doc["playQueue"]
        assert [e["id"] for e in q["entry"]] == ["t1", "t2", "ts"] and q["current"] == "t2" and q["position"] == 4200
        assert q["changedBy"] == "subsonic-My-Phone"
        status, player = await base.call(client, "GET", "/v1/me/player", world.token("u1"))
        assert status == 200 and player["item"]["id"] == "t2" and player["is_playing"] is False
        assert player["device"]["id"] == "subsonic-My-Phone" and player["progress_ms"] == 4200
        assert code_of((await rest(client, "savePlayQueue", [*creds().items(), ("id", "t1"), ("current", "t2")]))[1]) == 0
        assert code_of((await rest(client, "savePlayQueue", [*creds().items(), ("id", "nope")]))[1]) == 70

    run(world, scenario)


# -- plays: the trust path of POST /v1/events ---------------------------------------------------------
def test_scrobbles_report_on_server_issued_plays_only(world: World) -> None:
    async def scenario(client: TestClient) -> None:
        assert code_of((await rest(client, "scrobble", {**creds(), "id": "t2"}))[1]) == 50  # never started
        assert world.produced("play.completed") == []
        await rest(client, "scrobble", {**creds(c="DSub"), "id": "t2", "submission": "false"})  # now playing
        [started] = world.produced("play.started")
        claims = parse_grant(started["play_id"])
        assert claims is not None and claims.issued_ms == world.api.now_ms()
        assert (started["user_id"], started["track_id"], started["device_id"]) == ("u1", "t2", "subsonic-DSub")
        assert (started["country"], started["product"]) == ("DE", "premium") and started["received_at"] is not None
        world.now += 45.0
        _, doc, _ = await rest(client, "scrobble", {**creds(), "id": "t2", "submission": "True"})
        assert doc["status"] == "ok"
        [completed] = world.produced("play.completed")
        assert completed["play_id"] == started["play_id"] and completed["ms_played"] == 45_000
        assert completed["occurred_at"] == world.api.now_ms()
        for e in (started, completed):
            assert client_event_reason(e) is None  # what every reader will judge
        await rest(client, "scrobble", {**creds(), "id": "t2"})  # a client's retry: the same play, nothing new
        assert len(world.produced("play.completed")) == 1
        assert code_of((await rest(client, "scrobble", {**creds("u3", US_PASSWORD), "id": "t1",
                                                        "submission": "false"}))[1]) == 50  # blocked in US
        assert code_of((await rest(client, "scrobble", {**creds("ghost", "ghost-password"), "id": "t2",
                                                        "submission": "false"}))[1]) == 50  # not registered
        old = world.api.now_ms() - 10 * 86_400_000
        _, doc, _ = await rest(client, "scrobble", {**creds(), "id": "t2", "submission": "false"})
        world.now += 1
        _, doc, _ = await rest(client, "scrobble", {**creds(), "id": "t2", "time": str(old)})
        assert code_of(doc) == 50  # a listen long before the play was issued

    run(world, scenario)


# -- the whole-file stream ----------------------------------------------------------------------------
def test_stream_whole_file_ranges_and_tiers(world: World) -> None:
    top = world.bodies[320]
    size = len(top)

    async def scenario(client: TestClient) -> None:
        status, _, (resp, raw) = await rest(client, "stream", {**creds(), "id": "ts"})
        assert status == 200 and raw == top and resp.headers["Accept-Ranges"] == "bytes"
        assert resp.headers["ETag"] == '"' + hashlib.sha256(top).hexdigest()[:32] + '"'
        assert len(world.produced("play.started")) == 1
        for header, expected_status, want, content_range in (
            ("bytes=100-199", 206, top[100:200], f"bytes 100-199/{size}"),
            ("bytes=-100", 206, top[-100:], f"bytes {size - 100}-{size - 1}/{size}"),
            (f"bytes={size - 5}-{size + 50}", 206, top[-5:], f"bytes {size - 5}-{size - 1}/{size}"),
            ("bytes=0-0", 206, top[:1], f"bytes 0-0/{size}"),
            ("bytes=19990-20010", 206, top[19990:20011], f"bytes 19990-20010/{size}"),  # across segments
            ("bytes=0-1,5-9", 200, top, None),
            ("lines=1-2", 200, top, None),
        ):
            status, _, (resp, raw) = await rest(client, "stream", {**creds(), "id": "ts"}, headers={"Range": header})
            assert (status, raw) == (expected_status, want), header
            assert resp.headers.get("Content-Range") == content_range, header
        status, _, (resp, _) = await rest(client, "stream", {**creds(), "id": "ts"}, headers={"Range": f"bytes={size}-"})
        assert status == 416 and resp.headers["Content-Range"] == f"bytes */{size}"
        status, _, (_, raw) = await rest(client, "stream", {**creds(), "id": "ts"},
                                         headers={"Range": "bytes=5-9", "If-Range": '"other"'})
        assert status == 200 and raw == top
        status, _, (resp, raw) = await rest(client, "stream", {**creds(), "id": "ts"}, http="HEAD")
        assert status == 200 and raw == b"" and resp.headers["Content-Length"] == str(size)
        assert len(world.produced("play.started")) == 1  # retries, ranges and HEAD: the same play
        for kbps, want in (("160", 160), ("100", 96), ("1", 96), ("0", 320)):
            _, _, (_, raw) = await rest(client, "stream", {**creds(), "id": "ts", "maxBitRate": kbps, "format": "mp3"})
            assert raw == world.bodies[want], kbps
        _, _, (_, raw) = await rest(client, "stream", {**creds("u2", FREE_PASSWORD), "id": "ts"})
        assert raw == world.bodies[160]  # free: at most 160 kbps
        _, _, (_, raw) = await rest(client, "download", {**creds(), "id": "ts", "maxBitRate": "96"})
        assert raw == top
        assert code_of((await rest(client, "stream", {**creds(), "id": "t3"}))[1]) == 50  # taken down in DE
        assert code_of((await rest(client, "stream", {**creds(), "id": "t2"}))[1]) == 70  # no audio
        assert code_of((await rest(client, "stream", {**creds(), "id": "nope"}))[1]) == 70
        status, _, (resp, raw) = await rest(client, "getCoverArt", {**creds(), "id": "al-al1", "size": "32"})
        assert status == 200 and resp.content_type == "image/png" and raw.startswith(b"\x89PNG\r\n\x1a\n")
        assert code_of((await rest(client, "getCoverArt", {**creds(), "id": "al-nope"}))[1]) == 70

    run(world, scenario)


def test_browsing_answers(world: World) -> None:
    async def scenario(client: TestClient) -> None:
        _, doc, _ = await rest(client, "getArtists", creds())
        index = doc["artists"]["index"]
        assert [(i["name"], [a["name"] for a in i["artist"]]) for i in index] == [("A", ["Ana Berg"]),
                                                                                  ("V", ["Velvet Harbor"])]
        _, doc, _ = await rest(client, "getSong", {**creds(), "id": "t1b"})  # an alias: its canonical track
        song = doc["song"]
        assert song["id"] == "t1" and song["album"] == "Northern Lights" and song["duration"] == 200
        assert song["bitRate"] == 320 and song["suffix"] == "aac" and song["year"] == 2025
        _, doc, _ = await rest(client, "getSong", {**creds("u2", FREE_PASSWORD), "id": "t1"})
        assert doc["song"]["bitRate"] == 160
        _, doc, _ = await rest(client, "search3", {**creds(), "query": "midnigt rivr"})  # a typo
        assert [s["id"] for s in doc["searchResult3"]["song"]] == ["t1"]
        _, doc, _ = await rest(client, "search3", {**creds(), "query": '""', "songCount": "2", "songOffset": "1"})
        assert [s["id"] for s in doc["searchResult3"]["song"]] == ["t2", "t3"]  # everything, by id, paged
        _, doc, _ = await rest(client, "getAlbumList2", {**creds(), "type": "byYear", "fromYear": "2030",
                                                         "toYear": "2000"})
        assert [a["id"] for a in doc["albumList2"]["album"]] == ["al1"]
        _, doc, _ = await rest(client, "getGenres", creds())
        assert {g["value"]: (g["songCount"], g["albumCount"]) for g in doc["genres"]["genre"]} == {
            "pop": (3, 1), "jazz": (1, 1)}
        _, doc, _ = await rest(client, "getRandomSongs", {**creds(), "size": "50", "genre": "jazz"})
        assert [s["id"] for s in doc["randomSongs"]["song"]] == ["t2"]

    run(world, scenario)
