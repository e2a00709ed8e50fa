"""Spotify Web API fidelity, in process (the harness of tests/unit/test_api_routes.py): shuffle and
repeat, device_id on every command, playlist body forms, market/country, search field filters,
recently played and top items."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient

from core.timefmt import format_ts
from tests.unit.test_api_routes import T0, World, call, catalog_events, ev, run


@pytest.fixture
def world() -> World:
    w = World()
    w.feed(catalog_events())
    return w


def uris(*ids: str) -> list[str]:
    return [f"spotify:track:{t}" for t in ids]


def test_shuffle_and_repeat_commands_fold_into_the_player_state(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        tok = world.token("u1")
        assert (await call(c, "PUT", "/v1/me/player/play?device_id=d1", tok, json={"uris": uris("t1", "t2")}))[0] == 204
        body = (await call(c, "GET", "/v1/me/player", tok))[1]
        assert body["shuffle_state"] is False and body["repeat_state"] == "off" and body["smart_shuffle"] is False
        assert (await call(c, "PUT", "/v1/me/player/shuffle?state=true", tok))[0] == 204
        assert (await call(c, "PUT", "/v1/me/player/repeat?state=track&device_id=d1", tok))[0] == 204
        body = (await call(c, "GET", "/v1/me/player", tok))[1]
        assert body["shuffle_state"] is True and body["repeat_state"] == "track"
        assert (await call(c, "POST", "/v1/me/player/next", tok))[0] == 204
        assert (await call(c, "GET", "/v1/me/player", tok))[1]["item"]["id"] == "t1"  # repeat track: again
        assert (await call(c, "PUT", "/v1/me/player/repeat?state=context", tok))[0] == 204
        assert (await call(c, "POST", "/v1/me/player/next", tok))[0] == 204
        assert (await call(c, "GET", "/v1/me/player", tok))[1]["item"]["id"] == "t2"  # the only other item
        assert (await call(c, "POST", "/v1/me/player/next", tok))[0] == 204  # wraps
        assert (await call(c, "GET", "/v1/me/player", tok))[1]["item"]["id"] == "t1"
        assert (await call(c, "PUT", "/v1/me/player/repeat?state=off", tok))[0] == 204
        assert (await call(c, "POST", "/v1/me/player/next", tok))[0] == 204  # t2, the last of the context
        status, body = await call(c, "POST", "/v1/me/player/next", tok)
        assert status == 403 and body["error"]["reason"] == "NO_NEXT_TRACK"
        assert (await call(c, "PUT", "/v1/me/player/repeat?state=context", tok))[0] == 204
        assert (await call(c, "POST", "/v1/me/player/next", tok))[0] == 204
        world.deliver()  # the worker's fold of the same events: same answers, overlay gone
        assert world.replica.pending_player == {}
        body = (await call(c, "GET", "/v1/me/player", tok))[1]
        assert body["item"]["id"] == "t1" and body["shuffle_state"] is True and body["repeat_state"] == "context"
        shuffle_event = [e for e in world.publisher.events if e["type"] == "player.shuffle_set"]
        assert [(e["shuffle"], e["device_id"]) for e in shuffle_event] == [(True, "d1")]
        repeat_events = [e for e in world.publisher.events if e["type"] == "player.repeat_set"]
        assert [e["repeat"] for e in repeat_events] == ["track", "context", "off", "context"]

        produced = len(world.publisher.events)
        for path in ("/v1/me/player/shuffle", "/v1/me/player/shuffle?state=yes", "/v1/me/player/repeat?state=all",
                     "/v1/me/player/repeat"):
            status, body = await call(c, "PUT", path, tok)
            assert status == 400 and "state" in body["error"]["message"], path
        status, body = await call(c, "PUT", "/v1/me/player/shuffle?state=false&device_id=tv", tok)
        assert status == 404 and "Device not found" in body["error"]["message"] and "'tv'" in body["error"]["message"]
        world.feed([ev("user.registered", user_id="u9", country="DE", product="premium", display_name="U9")])
        status, body = await call(c, "PUT", "/v1/me/player/repeat?state=off", world.token("u9"))
        assert status == 404 and body["error"]["reason"] == "NO_ACTIVE_DEVICE"
        assert len(world.publisher.events) == produced  # refused commands produce nothing

    run(world, scenario)


def test_device_id_on_every_command_and_transfer(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        tok = world.token("u1")
        assert (await call(c, "PUT", "/v1/me/player/play", tok, json={"uris": uris("t1", "t2")}))[0] == 204
        commands = [("PUT", "/v1/me/player/pause"), ("PUT", "/v1/me/player/play"), ("PUT", "/v1/me/player/seek?position_ms=5"),
                    ("PUT", "/v1/me/player/volume?volume_percent=5"), ("PUT", "/v1/me/player/shuffle?state=false"),
                    ("PUT", "/v1/me/player/repeat?state=off"), ("POST", "/v1/me/player/queue?uri=spotify:track:t2"),
                    ("POST", "/v1/me/player/next"), ("POST", "/v1/me/player/previous")]
        for method, path in commands:
            sep = "&" if "?" in path else "?"
            before = len(world.publisher.events)
            status, body = await call(c, method, f"{path}{sep}device_id=nope", tok)
            assert status == 404 and "'nope' is not one of your registered devices" in body["error"]["message"], path
            assert len(world.publisher.events) == before
            status, _ = await call(c, method, f"{path}{sep}device_id=d2", tok)
            assert status == 204, path
            last = world.publisher.events[-1]
            assert last.get("device_id", "d2") == "d2", path  # player.queued names no device
        status, body = await call(c, "PUT", "/v1/me/player", tok, json={"device_ids": ["gone"], "play": True})
        assert status == 404 and "'gone'" in body["error"]["message"]
        status, _ = await call(c, "PUT", "/v1/me/player?device_id=d1", tok, json={"device_ids": ["d2"]})
        assert status == 400
        assert (await call(c, "PUT", "/v1/me/player", tok, json={"device_ids": ["d1"], "play": False}))[0] == 204
        assert (await call(c, "GET", "/v1/me/player", tok))[1]["device"]["id"] == "d1"

    run(world, scenario)


def test_market_country_alias_and_from_token(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        tok = world.token("u1")  # u1 is in DE; t1 is licensed in DE and FR, blocked in US
        assert (await call(c, "GET", "/v1/tracks/t1?country=US", tok))[1]["is_playable"] is False
        assert (await call(c, "GET", "/v1/tracks/t1?market=FR&country=US", tok))[1]["is_playable"] is True
        assert (await call(c, "GET", "/v1/tracks/t1?market=from_token", tok))[1]["is_playable"] is True
        assert (await call(c, "GET", "/v1/tracks?ids=t1&country=US", tok))[1]["tracks"][0]["is_playable"] is False
        body = (await call(c, "GET", "/v1/search?q=midnight&type=track&country=US", tok))[1]
        assert body["tracks"]["items"][0]["is_playable"] is False
        status, body = await call(c, "GET", "/v1/tracks/t1?country=usa", tok)
        assert status == 400 and "country" in body["error"]["message"]

    run(world, scenario)


def test_search_field_filters_through_the_route(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        tok = world.token("u1")

        async def found(q: str, kind: str = "track") -> list[str]:
            status, body = await call(c, "GET", "/v1/search", tok, params={"q": q, "type": kind})
            assert status == 200, body
            return sorted(i["id"] for i in body[kind + "s"]["items"])

        assert await found('artist:"Velvet Harbor"') == ["t1", "t3"]  # ar1's tracks (t1b is t1's alias)
        assert await found("artist:velvet mirrors") == ["t3"]
        assert await found("track:golden") == ["t2"]
        assert await found("album:northern year:2025") == ["t1", "t2", "t3"]  # al1 released 2025-01-01
        assert await found("year:2020-2024") == []
        assert await found("isrc:ISRC2") == ["t2"]
        assert await found("genre:jazz") == ["t2"]
        assert await found("artist:berg", "artist") == ["ar2"]
        assert await found("year:2025 artist:velvet", "album") == ["al1"]
        status, body = await call(c, "GET", "/v1/search", tok, params={"q": "year:90s", "type": "track"})
        assert status == 400 and "year" in body["error"]["message"]

    run(world, scenario)


def test_playlist_body_forms(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        tok = world.token("u1")
        pid = (await call(c, "POST", "/v1/me/playlists", tok, json={"name": "Forms"}))[1]["id"]

        async def items() -> list[str]:
            return [e["track"]["id"] for e in (await call(c, "GET", f"/v1/playlists/{pid}/items", tok))[1]["items"]]

        assert (await call(c, "POST", f"/v1/playlists/{pid}/tracks?uris=spotify:track:t1,spotify:track:t2", tok))[0] == 201
        assert (await call(c, "POST", f"/v1/playlists/{pid}/items", tok, json=uris("t3", "t1")))[0] == 201
        assert (await call(c, "POST", f"/v1/playlists/{pid}/items", tok, json={"uris": uris("t2"), "position": 0}))[0] == 201
        assert await items() == ["t2", "t1", "t2", "t3", "t1"]
        assert (await call(c, "DELETE", f"/v1/playlists/{pid}/items", tok, json=uris("t2")))[0] == 200  # bare array
        assert await items() == ["t1", "t3", "t1"]
        assert (await call(c, "DELETE", f"/v1/playlists/{pid}/tracks", tok, json={"uris": uris("t3")}))[0] == 200
        assert await items() == ["t1", "t1"]
        status, body = await call(c, "DELETE", f"/v1/playlists/{pid}/items", tok,
                                  json={"items": [{"uri": "spotify:track:t1", "positions": [0]}]})
        assert status == 400 and "positions" in body["error"]["message"]
        assert (await call(c, "PUT", f"/v1/playlists/{pid}/items", tok, json=uris("t2", "t3")))[0] == 200  # replace
        assert await items() == ["t2", "t3"]
        assert (await call(c, "PUT", f"/v1/playlists/{pid}/tracks?uris=spotify:track:t3,spotify:track:t1", tok))[0] == 200
        assert await items() == ["t3", "t1"]
        snap = (await call(c, "GET", f"/v1/playlists/{pid}", tok))[1]["snapshot_id"]
        status, _ = await call(c, "PUT", f"/v1/playlists/{pid}/items", tok,
                               json={"range_start": 1, "insert_before": 0, "range_length": 1, "snapshot_id": snap})
        assert status == 200 and await items() == ["t1", "t3"]
        status, _ = await call(c, "PUT", f"/v1/playlists/{pid}/items", tok,
                               json={"range_start": 1, "insert_before": 0, "snapshot_id": snap})
        assert status == 409  # the snapshot moved on
        assert (await call(c, "PUT", f"/v1/playlists/{pid}/items", tok, json={}))[0] == 400
        assert (await call(c, "PUT", f"/v1/playlists/{pid}/items", tok, json={"uris": []}))[0] == 200
        assert await items() == []

    run(world, scenario)


def _listen(world: World) -> list[tuple[str, str, int]]:
    """u1's listening, fed as the listening topic would: (play, track, played at)."""
    plays = [("q1", "t1", T0), ("q2", "t2", T0 + 60_000), ("q3", "t1", T0 + 120_000)]
    world.feed([ev("play.completed", play_id=p, user_id="u1", track_id=t, ms_played=200_000, country="DE",
                   product="premium", at=at) for p, t, at in plays])
    world.feed([ev("play.skipped", play_id="q4", user_id="u1", track_id="t3", ms_played=5_000, country="DE",
                   product="premium", at=T0 + 180_000)])  # a skip before 30 s is not "played"
    return plays


def test_recently_played_cursor_paging(world: World) -> None:
    plays = _listen(world)

    async def scenario(c: TestClient) -> None:
        tok = world.token("u1")
        status, body = await call(c, "GET", "/v1/me/player/recently-played?limit=2", tok)
        assert status == 200
        newest = sorted(plays, key=lambda p: -p[2])
        assert [(i["track"]["id"], i["played_at"]) for i in body["items"]] == [
            (t, format_ts(at)) for _, t, at in newest[:2]]
        assert body["items"][0]["played_at"].endswith("Z") and body["items"][0]["context"] is None
        assert body["cursors"] == {"after": str(newest[0][2]), "before": str(newest[1][2])}
        assert body["limit"] == 2 and body["total"] == 3
        query = parse_qs(urlsplit(body["next"]).query)
        assert query == {"before": [str(newest[1][2])], "limit": ["2"]}
        status, body = await call(c, "GET", f"/v1/me/player/recently-played?before={newest[1][2]}&limit=2", tok)
        assert [i["track"]["id"] for i in body["items"]] == [newest[2][1]] and body["next"] is None
        status, body = await call(c, "GET", f"/v1/me/player/recently-played?after={newest[2][2]}&limit=1", tok)
        assert [i["played_at"] for i in body["items"]] == [format_ts(newest[1][2])]
        assert parse_qs(urlsplit(body["next"]).query)["after"] == [str(newest[1][2])]
        status, body = await call(c, "GET", "/v1/me/player/recently-played?after=1&before=2", tok)
        assert status == 400 and "after" in body["error"]["message"]
        assert (await call(c, "GET", "/v1/me/player/recently-played?limit=51", tok))[0] == 400
        status, body = await call(c, "GET", "/v1/me/player/recently-played", world.token("u2"))
        assert status == 200 and body["items"] == [] and body["cursors"] == {} and body["next"] is None

    run(world, scenario)


def test_top_tracks_and_artists(world: World) -> None:
    _listen(world)  # t1 twice (artist ar1), t2 once (ar2), one early skip of t3 (ar1)

    async def scenario(c: TestClient) -> None:
        tok = world.token("u1")
        for time_range in ("short_term", "medium_term", "long_term"):
            status, body = await call(c, "GET", f"/v1/me/top/tracks?time_range={time_range}", tok)
            assert status == 200 and [t["id"] for t in body["items"]] == ["t1", "t2"] and body["total"] == 2
            status, body = await call(c, "GET", f"/v1/me/top/artists?time_range={time_range}", tok)
            assert [a["id"] for a in body["items"]] == ["ar1", "ar2"]
            assert body["items"][0]["name"] == "Velvet Harbor"
        status, body = await call(c, "GET", "/v1/me/top/tracks?limit=1&offset=1", tok)
        assert [t["id"] for t in body["items"]] == ["t2"] and body["previous"] is not None and body["next"] is None
        status, body = await call(c, "GET", "/v1/me/top/tracks?limit=1", tok)
        assert "time_range=medium_term" in body["next"] and "offset=1" in body["next"]
        assert (await call(c, "GET", "/v1/me/top/tracks?time_range=forever", tok))[0] == 400
        assert (await call(c, "GET", "/v1/me/top/genres", tok))[0] == 404  # one route per type, as Spotify
        world.now += 120 * 86_400  # four months later: nothing within 4 weeks, all within 6 months
        tok = world.token("u1")
        assert (await call(c, "GET", "/v1/me/top/tracks?time_range=short_term", tok))[1]["items"] == []
        assert (await call(c, "GET", "/v1/me/top/artists?time_range=short_term", tok))[1]["items"] == []
        assert len((await call(c, "GET", "/v1/me/top/artists?time_range=medium_term", tok))[1]["items"]) == 2

    run(world, scenario)
