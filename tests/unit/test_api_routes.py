"""The playback API's routes in process (aiohttp test server), over a replica fed by the real folds.

A fake worker runs the processors' view folds (``processors.views.apply_batch``) over events and
applies the published documents to the replica, exactly what the worker + view topics do, minus
Kafka. The publisher keeps what the API produced; ``World.deliver()`` runs it through the fake worker.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.settings import Settings
from playback import auth
from playback.api import MemoryPublisher, PlaybackApi, build_app
from playback.replica import Replica
from playback.signing import Signer
from processors import views
from schemas.codec import default_codec
from tests.support.taste_fold import BatchFeatures, TasteFolder

NOW = 1_780_000_000.0  # 2026-05-28
T0 = int(NOW * 1000) - 86_400_000
SETTINGS = Settings(cdn_base_url="http://cdn.test", signing_keys={"k1": "secret-one"}, token_secret="tok")


def ev(etype: str, n: list[int] = [0], **fields: Any) -> dict:  # noqa: B006 - a counter
    n[0] += 1
    return {"type": etype, "event_id": f"e{n[0]}", "occurred_at": fields.pop("at", T0), **fields}


def rendition(track_id: str, file_id: str, kbps: int, lufs: float, peak: float, count: int = 3) -> dict:
    return ev("audio.encoded", track_id=track_id, file_id=file_id, codec="aac", container="adts",
              bitrate_kbps=kbps, sample_rate_hz=44100, segment_ms=10_000, segment_count=count, byte_size=1000,
              storage_key=f"audio/{file_id}", loudness_lufs=lufs, true_peak_dbtp=peak)


def track(track_id: str, title: str, isrc: str, artist: str = "ar1", album: str = "al1", at: int = T0,
          genres: tuple[str, ...] = ("pop",)) -> dict:
    return ev("track.ingested", at=at, track_id=track_id, isrc=isrc, title=title, album_id=album, artist_ids=[artist],
              duration_ms=200_000, genres=list(genres), explicit=False, distributor="d",
              rightsholders=[{"rightsholder_id": "rh", "share_ppm": 1_000_000}])


def rights(track_id: str, territory: str, allowed: bool = True) -> dict:
    return ev("rights.changed", track_id=track_id, territory=territory, allowed=allowed, valid_from=None,
              valid_to=None)


class World:
    def __init__(self) -> None:
        self.replica = Replica()
        self.stores: dict[str, dict] = {spec.name: {} for spec in views.VIEWS}
        self.publisher = MemoryPublisher()
        self.api = PlaybackApi(SETTINGS, self.replica, self.publisher, clock=lambda: self.now)
        self.now = NOW
        self.delivered = 0
        self.taste = TasteFolder(self.replica)
        self.features = BatchFeatures(self.replica)

    def feed(self, events: list[dict]) -> None:
        for spec in views.VIEWS:
            if spec.name == "player":
                continue
            published, _ = views.apply_batch(spec, self.stores[spec.name], [(None, e) for e in events])
            for key, (_, doc) in published.items():
                self.replica.apply(spec.name, key, doc)
        for e in events:
            if e["type"].startswith("player."):
                self.replica.apply("player", e["user_id"], e)
        plays = [e for e in events if e["type"].startswith("play.")]
        self.taste.feed(plays)  # the worker's taste stage
        self.features.feed(plays)  # and the batch job (here at once)
        self.replica.search.commit()

    def deliver(self) -> None:
        """The worker + view topics catch up with what the API produced."""
        self.feed(self.publisher.events[self.delivered:])
        self.delivered = len(self.publisher.events)

    def token(self, user: str, ttl: int = 600) -> dict[str, str]:
        return {"Authorization": "Bearer " + auth.issue_token(user, "tok", now=self.now, ttl=ttl)}


def catalog_events() -> list[dict]:
    return [
        ev("artist.ingested", artist_id="ar1", name="Velvet Harbor", genres=["pop"]),
        ev("artist.ingested", artist_id="ar2", name="Ana Berg", genres=["jazz"]),
        ev("album.ingested", album_id="al1", title="Northern Lights", artist_ids=["ar1"], release_date="2025-01-01",
           label="L", artwork_uri=None),
        track("t1", "Midnight River", "ISRC1"),
        track("t1b", "Midnight River", "ISRC1", at=T0 + 1000),  # an alias upload of t1
        track("t2", "Golden Summer", "ISRC2", artist="ar2", genres=("jazz",)),
        track("t3", "Broken Mirrors", "ISRC3"),
        rendition("t1", "a" * 32, 96, -20.0, -8.0),
        rendition("t1", "b" * 32, 160, -10.0, -0.5),
        rendition("t1", "c" * 32, 320, -16.0, -3.0),
        rights("t1", "DE"), rights("t1", "FR"), rights("t1", "US", allowed=False),
        rights("t2", "DE"),
        rights("t3", "DE"),
        ev("track.taken_down", track_id="t3", territories=["DE"], reason="DMCA notice"),
        ev("user.registered", user_id="u1", country="DE", product="premium", display_name="U1"),
        ev("device.registered", user_id="u1", device_id="d1", device_type="phone", name="Phone"),
        ev("device.registered", user_id="u1", device_id="d2", device_type="speaker", name="Kitchen"),
        ev("user.registered", user_id="u2", country="DE", product="free", display_name="U2"),
        ev("device.registered", user_id="u2", device_id="x1", device_type="web", name="Web"),
        ev("user.registered", user_id="u3", country="US", product="premium", display_name="U3"),
        ev("device.registered", user_id="u3", device_id="y1", device_type="web", name="Web"),
    ]


@pytest.fixture
def world() -> World:
    w = World()
    w.feed(catalog_events())
    return w


def run(world: World, scenario) -> Any:
    async def main() -> Any:
        client = TestClient(TestServer(build_app(world.api)))
        await client.start_server()
        try:
            return await scenario(client)
        finally:
            await client.close()

    return asyncio.run(main())


async def call(client: TestClient, method: str, path: str, token: dict | None = None, **kw: Any):
    resp = await client.request(method, path, headers=token or {}, **kw)
    body = await resp.read()
    data = None
    if body and resp.content_type == "application/json":
        data = await resp.json()
    return resp.status, data


# ---------------------------------------------------------------------------------------------------


def test_auth_missing_bad_expired_tokens_get_401_with_spotify_error(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        status, body = await call(c, "GET", "/v1/tracks/t1")
        assert status == 401 and body == {"error": {"status": 401, "message": auth.NO_TOKEN}}
        status, body = await call(c, "GET", "/v1/tracks/t1", {"Authorization": "Bearer nonsense"})
        assert status == 401 and body["error"]["message"] == auth.INVALID
        expired = {"Authorization": "Bearer " + auth.issue_token("u1", "tok", now=NOW - 100, ttl=10)}
        status, body = await call(c, "GET", "/v1/tracks/t1", expired)
        assert status == 401 and body["error"]["message"] == auth.EXPIRED
        other_secret = {"Authorization": "Bearer " + auth.issue_token("u1", "other", now=NOW)}
        assert (await call(c, "GET", "/v1/tracks/t1", other_secret))[0] == 401
        status, _ = await call(c, "GET", "/openapi.json")  # not under /v1: public
        assert status == 200

    run(world, scenario)


def test_track_alias_resolves_to_canonical_with_linked_from_and_market(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        status, body = await call(c, "GET", "/v1/tracks/t1b?market=FR", world.token("u1"))
        assert status == 200
        assert body["id"] == "t1" and body["linked_from"]["id"] == "t1b"
        assert body["is_playable"] is True and body["name"] == "Midnight River"
        assert body["artists"][0]["name"] == "Velvet Harbor" and body["album"]["name"] == "Northern Lights"
        status, body = await call(c, "GET", "/v1/tracks/t1?market=US", world.token("u1"))
        assert body["is_playable"] is False and "not licensed in US" in body["restrictions"]["message"]
        status, body = await call(c, "GET", "/v1/tracks/t3", world.token("u1"))  # market from the user: DE
        assert body["is_playable"] is False and "taken down" in body["restrictions"]["message"]
        status, body = await call(c, "GET", "/v1/tracks/nope", world.token("u1"))
        assert status == 404 and body["error"]["status"] == 404

    run(world, scenario)


def test_search_is_typo_tolerant_rights_aware_and_finds_artists_albums(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        tok = world.token("u1")
        status, body = await call(c, "GET", "/v1/search?q=midnigth%20rivr&type=track&market=US", tok)
        assert status == 200
        items = body["tracks"]["items"]
        assert [t["id"] for t in items] == ["t1"] and items[0]["is_playable"] is False
        assert body["tracks"]["total"] == 1
        status, body = await call(c, "GET", "/v1/search?q=velvet%20harbour&type=artist,album", tok)
        assert [a["id"] for a in body["artists"]["items"]] == ["ar1"]
        assert [a["id"] for a in body["albums"]["items"]] == ["al1"]  # by its artist's name
        status, body = await call(c, "GET", "/v1/search?q=t1b&type=track", tok)  # alias id
        assert [t["id"] for t in body["tracks"]["items"]] == ["t1"]
        assert (await call(c, "GET", "/v1/search?type=track", tok))[0] == 400
        assert (await call(c, "GET", "/v1/search?q=x&type=show", tok))[0] == 400
        assert (await call(c, "GET", "/v1/search?q=x&limit=51", tok))[0] == 400

    run(world, scenario)


def test_play_checks_rights_and_updates_player_with_read_your_writes(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        tok = world.token("u1")
        status, body = await call(c, "PUT", "/v1/me/player/play", tok, json={"uris": ["spotify:track:t3"]})
        assert status == 403 and "taken down in DE" in body["error"]["message"]
        status, body = await call(c, "PUT", "/v1/me/player/play", tok, json={"uris": ["spotify:track:zz"]})
        assert status == 403 and "unknown track" in body["error"]["message"]
        status, body = await call(c, "PUT", "/v1/me/player/play", world.token("u3"),
                                  json={"uris": ["spotify:track:t1"]})
        assert status == 403 and "region blocked" in body["error"]["message"]
        assert world.publisher.events == []  # refused commands produce nothing
        assert (await call(c, "GET", "/v1/me/player", tok))[0] == 204

        status, _ = await call(c, "PUT", "/v1/me/player/play?device_id=d1", tok,
                               json={"uris": ["spotify:track:t1b", "spotify:track:t2"], "position_ms": 5000})
        assert status == 204
        (event,) = world.publisher.events
        assert event["type"] == "player.play_requested" and event["track_ids"] == ["t1", "t2"]
        assert event["device_id"] == "d1" and event["user_id"] == "u1"
        # not delivered yet: the pending overlay answers
        world.now += 2
        status, body = await call(c, "GET", "/v1/me/player", tok)
        assert status == 200 and body["item"]["id"] == "t1" and body["is_playing"] is True
        assert body["progress_ms"] == 7000 and body["device"]["id"] == "d1" and body["device"]["name"] == "Phone"
        world.deliver()
        assert world.replica.pending_player == {}
        assert (await call(c, "GET", "/v1/me/player", tok))[1]["progress_ms"] == 7000

        assert (await call(c, "PUT", "/v1/me/player/pause", tok))[0] == 204
        assert (await call(c, "PUT", "/v1/me/player/seek?position_ms=1234", tok))[0] == 204
        body = (await call(c, "GET", "/v1/me/player", tok))[1]
        assert body["is_playing"] is False and body["progress_ms"] == 1234
        assert (await call(c, "POST", "/v1/me/player/queue?uri=spotify:track:t2", tok))[0] == 204
        assert (await call(c, "POST", "/v1/me/player/next", tok))[0] == 204
        assert (await call(c, "GET", "/v1/me/player", tok))[1]["item"]["id"] == "t2"
        assert (await call(c, "POST", "/v1/me/player/previous", tok))[0] == 204
        assert (await call(c, "PUT", "/v1/me/player/volume?volume_percent=40&device_id=d2", tok))[0] == 204
        assert (await call(c, "PUT", "/v1/me/player/volume?volume_percent=101", tok))[0] == 400
        status, _ = await call(c, "PUT", "/v1/me/player", tok, json={"device_ids": ["d2"], "play": True})
        assert status == 204
        body = (await call(c, "GET", "/v1/me/player", tok))[1]
        assert body["device"]["id"] == "d2" and body["device"]["volume_percent"] == 40 and body["is_playing"]
        assert (await call(c, "PUT", "/v1/me/player", tok, json={"device_ids": ["dX"]}))[0] == 404
        assert (await call(c, "PUT", "/v1/me/player/play?device_id=nope", tok, json={}))[0] == 404
        types = [e["type"] for e in world.publisher.events]
        assert types == ["player.play_requested", "player.paused", "player.seeked", "player.queued",
                         "player.skipped_to", "player.skipped_to", "player.volume_set", "player.transferred"]

    run(world, scenario)


def test_player_command_the_fold_refuses_is_403_and_not_produced(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        tok = world.token("u1")
        status, body = await call(c, "POST", "/v1/me/player/next", tok)
        assert status == 403 and "nothing to play" in body["error"]["message"]
        status, body = await call(c, "PUT", "/v1/me/player/play", world.token("nobody"), json={})
        assert status == 403 and "not registered" in body["error"]["message"]
        assert world.publisher.events == []

    run(world, scenario)


def test_manifest_rungs_per_tier_gain_and_signed_urls(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        status, body = await call(c, "GET", "/v1/playback/t1b/manifest", world.token("u1"))
        assert status == 200
        assert body["track_id"] == "t1" and body["linked_from"]["id"] == "t1b"
        assert [r["bitrate_kbps"] for r in body["rungs"]] == [96, 160, 320]
        gains = {r["bitrate_kbps"]: r["gain_db"] for r in body["rungs"]}
        assert gains[160] == -4.0  # -10 LUFS -> -4 dB
        assert gains[320] == 2.0  # -16 -> +2, peak -3 + 2 = -1: allowed
        assert gains[96] == 6.0  # -20 -> +6 wanted; peak -8 allows up to +7
        start = int(NOW) // 60 * 60
        assert body["expires_at"] == start + 3600
        signer = Signer({"k1": "secret-one"})
        for rung in body["rungs"]:
            assert len(rung["segments"]) == 3
            for k, url in enumerate(rung["segments"]):
                # signed for the listener's country (u1 is in DE), so the CDN applies takedowns per territory
                assert url == signer.sign_segment_url("http://cdn.test", rung["file_id"], k, now=start, ttl=3600,
                                                      territory="DE")
                assert "&ter=DE&" in url
        status, body = await call(c, "GET", "/v1/playback/t1/manifest", world.token("u2"))  # free tier
        assert [r["bitrate_kbps"] for r in body["rungs"]] == [96, 160]
        status, body = await call(c, "GET", "/v1/playback/t1/manifest", world.token("u3"))
        assert status == 403 and "region blocked" in body["error"]["message"]
        status, body = await call(c, "GET", "/v1/playback/t2/manifest", world.token("u1"))
        assert status == 404  # licensed, but no audio encoded
        status, body = await call(c, "GET", "/v1/playback/t3/manifest", world.token("u1"))
        assert status == 403 and body["error"]["reason"].startswith("track is taken down")

    run(world, scenario)


def test_gain_is_capped_by_true_peak() -> None:
    assert PlaybackApi.gain_db(-20.0, -2.0) == 1.0  # +6 wanted, peak allows +1
    assert PlaybackApi.gain_db(-20.0, 0.5) == 0.0
    assert PlaybackApi.gain_db(-8.0, 1.0) == -6.0


def test_events_batch_mixed_produces_valid_and_lists_rejected(world: World) -> None:
    codec = default_codec()

    pids: dict[int, str] = {}

    def play(i: int, user: str = "u1", **kw: Any) -> dict:  # a play the manifest issued (tests/unit/test_trust_api.py)
        e = ev("play.progress", play_id=pids[i], user_id=user, track_id="t1", ms_played=31_000, country="DE",
               product="premium", context_uri=None, at=int(NOW * 1000))
        return {**codec.to_json(e), **kw}

    async def scenario(c: TestClient) -> None:
        tok = world.token("u1")
        for i in range(1, 7):
            pids[i] = (await call(c, "GET", "/v1/playback/t1/manifest", tok))[1]["play_id"]
        batch = [play(1), play(2, ms_played=-5), play(3, user="u2"), {"type": "user.registered"}, "x", play(4)]
        status, body = await call(c, "POST", "/v1/events", tok, json={"events": batch})
        assert status == 400
        assert body["accepted"] == 2 and body["error"]["status"] == 400
        assert [r["index"] for r in body["rejected"]] == [1, 2, 3, 4]
        assert "access token" in body["rejected"][1]["reason"]
        assert [e["play_id"] for e in world.publisher.events] == [pids[1], pids[4]]
        status, body = await call(c, "POST", "/v1/events", tok, json=[play(5)])
        assert status == 202 and body == {"accepted": 1}
        assert (await call(c, "POST", "/v1/events", tok, data=b"{nope"))[0] == 400
        assert (await call(c, "POST", "/v1/events", tok, json={"events": []}))[0] == 400
        # a type that is not a string (an object, a list: unhashable) is refused, not a 500 (schemathesis found it)
        status, body = await call(c, "POST", "/v1/events", tok, json={"events": [{"type": {"x": {}}}, {"type": [1]}]})
        assert status == 400 and [r["index"] for r in body["rejected"]] == [0, 1]
        world.publisher.fail = True
        assert (await call(c, "POST", "/v1/events", tok, json=[play(6)]))[0] == 503

    run(world, scenario)


def test_home_shelves_from_listening_with_rights(world: World) -> None:
    world.feed([
        track("t4", "Silver Owls", "ISRC4", artist="ar2", genres=("jazz",)), rights("t4", "DE"),
        ev("play.completed", play_id="q1", user_id="u2", track_id="t2", ms_played=200_000, country="DE",
           product="free"),
        ev("play.completed", play_id="q2", user_id="u2", track_id="t4", ms_played=200_000, country="DE",
           product="free"),
        ev("play.completed", play_id="q3", user_id="u1", track_id="t2", ms_played=200_000, country="DE",
           product="premium"),
    ])

    async def scenario(c: TestClient) -> None:
        status, body = await call(c, "GET", "/v1/views/home", world.token("u1"))
        assert status == 200 and body["country"] == "DE"
        # ar2's other track, streamed by t2's other listener, is new to u1: the first pick (t2 was played)
        first = body["shelves"][0]
        assert first["kind"] == "discover-weekly" and first["items"][0]["name"] == "Silver Owls"
        every = [i["id"] for s in body["shelves"] for i in s["items"]]
        assert "t2" not in every and "t3" not in every  # just played; taken down in DE
        status, body = await call(c, "GET", "/v1/views/home", world.token("nobody"))
        assert status == 403

    run(world, scenario)


def test_playlists_create_edit_snapshot_and_permissions(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        tok = world.token("u1")
        status, body = await call(c, "POST", "/v1/users/u2/playlists", tok, json={"name": "x"})
        assert status == 403 and body["error"]["message"] == "You cannot create a playlist for another user"
        status, body = await call(c, "POST", "/v1/users/u1/playlists", tok, json={"name": "Mix", "public": False})
        assert status == 201 and body["owner"]["id"] == "u1" and body["tracks"]["total"] == 0
        pid, snap0 = body["id"], body["snapshot_id"]
        status, body = await call(c, "POST", f"/v1/playlists/{pid}/tracks", tok,
                                  json={"uris": ["spotify:track:t1b", "spotify:track:t2", "spotify:track:t3"]})
        assert status == 201 and body["snapshot_id"] != snap0
        snap1 = body["snapshot_id"]
        status, body = await call(c, "PUT", f"/v1/playlists/{pid}/tracks", tok,
                                  json={"range_start": 0, "insert_before": 3, "snapshot_id": snap0})
        assert status == 409
        status, body = await call(c, "PUT", f"/v1/playlists/{pid}/tracks", tok,
                                  json={"range_start": 0, "insert_before": 3, "snapshot_id": snap1})
        assert status == 200
        status, body = await call(c, "GET", f"/v1/playlists/{pid}", tok)
        assert [i["track"]["id"] for i in body["tracks"]["items"]] == ["t2", "t3", "t1"]
        status, body = await call(c, "DELETE", f"/v1/playlists/{pid}/tracks", tok,
                                  json={"tracks": [{"uri": "spotify:track:t3"}]})
        assert status == 200
        status, _ = await call(c, "POST", f"/v1/playlists/{pid}/tracks", world.token("u2"),
                               json={"uris": ["spotify:track:t1"]})
        assert status == 403
        status, _ = await call(c, "POST", f"/v1/playlists/{pid}/tracks", tok,
                               json={"uris": ["spotify:track:t1"], "position": 9})
        assert status == 400
        pending_snapshot = world.replica.playlist_state(pid)["snapshot_id"]
        world.deliver()  # the worker folds the same events: same snapshot ids, overlay dropped
        assert world.replica.pending_playlists == {}
        assert world.replica.playlists[pid]["snapshot_id"] == pending_snapshot
        status, body = await call(c, "GET", f"/v1/playlists/{pid}", tok)
        assert [i["track"]["id"] for i in body["tracks"]["items"]] == ["t2", "t1"]
        # play the playlist as a context
        status, _ = await call(c, "PUT", "/v1/me/player/play", tok,
                               json={"context_uri": f"spotify:playlist:{pid}", "offset": {"uri": "spotify:track:t1"}})
        assert status == 204 and world.publisher.events[-1]["offset"] == 1
        assert (await call(c, "GET", "/v1/playlists/missing", tok))[0] == 404

    run(world, scenario)


def test_openapi_lists_every_route_and_metrics_have_latency_histograms(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        status, spec = await call(c, "GET", "/openapi.json")
        assert status == 200 and spec["openapi"].startswith("3.")
        app_routes = {(r.method.lower(), r.resource.canonical) for r in c.app.router.routes()
                      if r.resource.canonical.startswith("/v1")}
        spec_routes = {(m, p) for p, ops in spec["paths"].items() for m in ops if p.startswith("/v1")}
        assert app_routes == spec_routes
        oauth_routes = {(r.method.lower(), r.resource.canonical) for r in c.app.router.routes()
                        if r.resource.canonical in ("/authorize", "/api/token")}
        assert oauth_routes == {(m, p) for p, ops in spec["paths"].items() for m in ops if not p.startswith("/v1")}
        # every /v1 route can answer 503 while the replicas catch up (playback/app.py), 429 when rate limited
        v1_ops = [op for p, ops in spec["paths"].items() if p.startswith("/v1") for op in ops.values()]
        assert all({"401", "403", "429", "503"} <= set(op["responses"]) for op in v1_ops)
        await call(c, "GET", "/v1/tracks/t1", world.token("u1"))
        resp = await c.get("/metrics")
        text = await resp.text()
        assert 'playlog_api_request_seconds_bucket{le="0.001",method="GET",route="/v1/tracks/{id}"}' in text
        assert 'playlog_api_replica_documents{view="tracks"} 4.0' in text
        status, body = await call(c, "GET", "/nope")
        assert status == 404 and body["error"]["status"] == 404

    run(world, scenario)


def test_non_alphanumeric_ids_are_served_under_a_base62_alias(world: World) -> None:
    world.feed([ev("artist.ingested", artist_id="art-9", name="Kestrel Nine", genres=["rock"]),
                ev("album.ingested", album_id="alb-9", title="Hollow Sky", artist_ids=["art-9"],
                   release_date="2024-02-02", label="L", artwork_uri=None),
                track("trk-9", "Quiet Engine", "ISRC9", artist="art-9", album="alb-9"),
                rights("trk-9", "DE")])
    # expected alias computed independently: base62 of b"\x01" + b"trk-9" after the "0z" marker
    n, digits = int.from_bytes(b"\x01trk-9", "big"), ""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    while n:
        n, r = divmod(n, 62)
        digits = alphabet[r] + digits
    alias = "0z" + digits

    async def scenario(c: TestClient) -> None:
        tok = world.token("u1")
        status, body = await call(c, "GET", f"/v1/tracks/{alias}", tok)
        assert status == 200 and body["name"] == "Quiet Engine"
        assert body["id"] == alias and body["uri"] == f"spotify:track:{alias}"
        assert body["href"].endswith(f"/v1/tracks/{alias}") and "linked_from" not in body
        assert body["album"]["id"].isalnum() and body["artists"][0]["id"].isalnum()
        assert body["album"]["id"] != "alb-9"
        status, body = await call(c, "GET", "/v1/search?q=quiet%20engine&type=track", tok)
        assert [t["id"] for t in body["tracks"]["items"]] == [alias]
        status, _ = await call(c, "PUT", "/v1/me/player/play?device_id=d1", tok,
                               json={"uris": [f"spotify:track:{alias}"]})
        assert status == 204
        assert world.publisher.events[-1]["track_ids"] == ["trk-9"]  # events keep the internal id
        status, body = await call(c, "GET", "/v1/me/player", tok)
        assert body["item"]["id"] == alias

    run(world, scenario)


def test_search_links_percent_encode_q_and_player_errors_carry_reason_inside_error(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        tok = world.token("u1")
        status, body = await call(c, "GET", "/v1/search?q=a%26b%20c%23&type=track&limit=1", tok)
        assert status == 200
        assert "q=a%26b%20c%23&type=track&offset=0&limit=1" in body["tracks"]["href"]
        # a user with no device: the player has nothing to act on
        world.feed([ev("user.registered", user_id="u9", country="DE", product="premium", display_name="U9")])
        status, body = await call(c, "PUT", "/v1/me/player/pause", world.token("u9"))
        assert status == 404 and body["error"]["reason"] == "NO_ACTIVE_DEVICE" and "reason" not in body

    run(world, scenario)


def test_me_devices_currently_playing_and_queue(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        tok = world.token("u1")
        status, body = await call(c, "GET", "/v1/me", tok)
        assert status == 200 and body["id"] == "u1" and body["country"] == "DE"
        assert body["product"] == "premium" and body["display_name"] == "U1"
        assert (await call(c, "GET", "/v1/me", world.token("nobody")))[0] == 403
        status, body = await call(c, "GET", "/v1/me/player/devices", tok)
        assert status == 200
        assert [(d["id"], d["name"], d["type"], d["is_active"]) for d in body["devices"]] == [
            ("d1", "Phone", "phone", False), ("d2", "Kitchen", "speaker", False)]
        assert (await call(c, "GET", "/v1/me/player/currently-playing", tok))[0] == 204
        assert (await call(c, "GET", "/v1/me/player/queue", tok))[1] == {"currently_playing": None, "queue": []}
        status, _ = await call(c, "PUT", "/v1/me/player/play", tok,
                               json={"uris": ["spotify:track:t1", "spotify:track:t2"]}, params={"device_id": "d2"})
        assert status == 204
        body = (await call(c, "GET", "/v1/me/player/devices", tok))[1]
        assert {d["id"]: d["is_active"] for d in body["devices"]} == {"d1": False, "d2": True}
        status, body = await call(c, "GET", "/v1/me/player/currently-playing", tok)
        assert status == 200 and body["item"]["id"] == "t1" and body["is_playing"] is True
        assert "device" not in body
        status, body = await call(c, "GET", "/v1/me/player/queue", tok)
        assert body["currently_playing"]["id"] == "t1" and [t["id"] for t in body["queue"]] == ["t2"]

    run(world, scenario)


def test_albums_artists_top_tracks_and_paging(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        tok = world.token("u1")
        status, body = await call(c, "GET", "/v1/albums/al1", tok)
        assert status == 200 and body["name"] == "Northern Lights" and body["total_tracks"] == 3  # t1 (t1b its alias), t2, t3
        assert [t["id"] for t in body["tracks"]["items"]] == ["t1", "t2", "t3"]
        assert [t["track_number"] for t in body["tracks"]["items"]] == [1, 2, 3]
        assert body["external_urls"]["spotify"].endswith("/album/al1")
        status, body = await call(c, "GET", "/v1/albums/al1/tracks?limit=2&offset=2", tok)
        assert [t["id"] for t in body["items"]] == ["t3"] and body["total"] == 3 and body["next"] is None
        assert body["previous"].endswith("/v1/albums/al1/tracks?offset=0&limit=2")
        status, body = await call(c, "GET", "/v1/albums/al1/tracks?limit=1", tok)
        assert body["next"].endswith("/v1/albums/al1/tracks?offset=1&limit=1") and body["previous"] is None
        assert (await call(c, "GET", "/v1/albums/nope", tok))[0] == 404
        status, body = await call(c, "GET", "/v1/albums?ids=al1,nope", tok)
        assert body["albums"][0]["id"] == "al1" and body["albums"][1] is None
        status, body = await call(c, "GET", "/v1/artists/ar2", tok)
        assert status == 200 and body["name"] == "Ana Berg" and body["genres"] == ["jazz"]
        status, body = await call(c, "GET", "/v1/artists?ids=ar1,ar2", tok)
        assert [a["name"] for a in body["artists"]] == ["Velvet Harbor", "Ana Berg"]
        status, body = await call(c, "GET", "/v1/artists/ar1/top-tracks", tok)
        assert sorted(t["id"] for t in body["tracks"]) == ["t1", "t3"]
        status, body = await call(c, "GET", "/v1/artists/ar1/albums", tok)
        assert [a["id"] for a in body["items"]] == ["al1"] and body["total"] == 1
        status, body = await call(c, "GET", "/v1/tracks?ids=t1,t2", tok)
        assert [t["name"] for t in body["tracks"]] == ["Midnight River", "Golden Summer"]
        assert body["tracks"][0]["disc_number"] == 1 and body["tracks"][1]["external_urls"]["spotify"]
        assert (await call(c, "GET", "/v1/artists/zz/albums", tok))[0] == 404

    run(world, scenario)


def test_playlist_items_routes_bare_array_paging_and_me_playlists(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        tok = world.token("u1")
        status, pl = await call(c, "POST", "/v1/me/playlists", tok, json={"name": "Mine"})
        assert status == 201 and pl["owner"]["id"] == "u1" and pl["items"]["total"] == 0
        pid = pl["id"]
        status, _ = await call(c, "POST", f"/v1/playlists/{pid}/items", tok,
                               json=["spotify:track:t1", "spotify:track:t2", "spotify:track:t3"])
        assert status == 201
        status, body = await call(c, "GET", f"/v1/playlists/{pid}/items?limit=2", tok)
        assert [e["track"]["id"] for e in body["items"]] == ["t1", "t2"] and body["total"] == 3
        assert body["next"].endswith(f"/v1/playlists/{pid}/items?offset=2&limit=2")
        status, body = await call(c, "GET", f"/v1/playlists/{pid}/tracks?offset=2", tok)
        assert [e["track"]["id"] for e in body["items"]] == ["t3"] and body["previous"] is not None
        status, _ = await call(c, "PUT", f"/v1/playlists/{pid}/items", tok,
                               json={"range_start": 2, "insert_before": 0})
        assert status == 200
        status, _ = await call(c, "DELETE", f"/v1/playlists/{pid}/items", tok,
                               json={"items": [{"uri": "spotify:track:t1"}]})
        assert status == 200
        status, body = await call(c, "GET", f"/v1/playlists/{pid}", tok)
        assert [e["track"]["id"] for e in body["items"]["items"]] == ["t3", "t2"]
        assert body["tracks"]["total"] == 2
        status, body = await call(c, "GET", "/v1/me/playlists", tok)
        assert [p["id"] for p in body["items"]] == [pid] and body["items"][0]["items"]["total"] == 2
        assert body["total"] == 1
        assert (await call(c, "GET", "/v1/me/playlists", world.token("u2")))[1]["total"] == 0

    run(world, scenario)
