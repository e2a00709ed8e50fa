"""The recommender's routes in process (``/v1/views/home``, ``/v1/views/radio``, ``/v1/recommendations``):
a planted world -- rock fans, jazz fans, a pop-streaming crowd -- fed through the real folds into the
replica (the fake worker of tests/unit/test_api_routes.py), no broker.

Expected values come from the planted tastes: the fan streamed rock artists ra0/ra1 only, co-listeners
of those tracks also streamed ra2/ra3 (rock), the crowd made pop the most streamed genre in DE.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from playback.ids import internal_id, public_id
from tests.unit.test_api_routes import NOW, World, call, ev, rights, run, track

DAY_S = 86_400
ROCK = [f"ra{i}" for i in range(8)]
JAZZ = [f"ja{i}" for i in range(3)]
POP = [f"pa{i}" for i in range(2)]
TAKEN_DOWN = "ra2t0"  # a strong candidate (co-listened) taken down in DE
BLOCKED = "ra3t0"  # a strong candidate not licensed in DE
W23_MONDAY = 1_780_272_000  # 2026-06-01 00:00 UTC, Monday of ISO week 2026-W23


def tid(artist: str, n: int) -> str:
    return f"{artist}t{n}"


def genre_of(track_id: str) -> str:
    return {"r": "rock", "j": "jazz", "p": "pop"}[track_id[0]]


def planted_events() -> list[dict]:
    out: list[dict] = []
    for artists, genre in ((ROCK, "rock"), (JAZZ, "jazz"), (POP, "pop")):
        for a in artists:
            out.append(ev("artist.ingested", artist_id=a, name=f"Artist {a}", genres=[genre]))
            for n in range(6):
                t = tid(a, n)
                out.append(track(t, f"Song {t}", f"ISRC{t}", artist=a, album=f"al{a}", genres=(genre,)))
                out.append(rights(t, "DE", allowed=t != BLOCKED))
    out.append(ev("track.taken_down", track_id=TAKEN_DOWN, territories=["DE"], reason="DMCA notice"))
    for u, country in (("fan", "DE"), ("jazzfan", "DE"), ("newbie", "DE")):
        out.append(ev("user.registered", user_id=u, country=country, product="premium", display_name=u))
        out.append(ev("device.registered", user_id=u, device_id="ph", device_type="phone", name="Phone"))
    n = 0

    def play(user: str, t: str, day: int) -> dict:
        nonlocal n
        n += 1
        return ev("play.completed", play_id=f"p{n}", user_id=user, track_id=t, ms_played=200_000, country="DE",
                  product="premium", at=int((NOW - day * DAY_S) * 1000) - n)

    # the fan: rock artists ra0 and ra1 only
    for day, t in enumerate([tid("ra0", 0), tid("ra0", 1), tid("ra1", 0), tid("ra1", 1), tid("ra0", 2)]):
        out.append(play("fan", t, day + 1))
    # co-listeners: the fan's tracks with the rest of rock (ra2, ra3 strongest: the two filtered tracks)
    for k in range(6):
        user = f"rockmate{k}"
        out.append(ev("user.registered", user_id=user, country="DE", product="free", display_name=user))
        for t in [tid("ra0", 0), tid("ra1", 0), TAKEN_DOWN, BLOCKED, tid("ra2", 1 + k % 5),
                  tid("ra3", 1 + k % 5), tid(ROCK[4 + k % 4], k % 6), tid(ROCK[4 + (k + 1) % 4], (k + 2) % 6)]:
            out.append(play(user, t, 3))
    # the jazz fan
    for t in [tid("ja0", 0), tid("ja0", 1), tid("ja1", 0)]:
        out.append(play("jazzfan", t, 2))
    # the crowd: pop is what DE streams most (each pop track 10 times)
    for k in range(10):
        user = f"crowd{k}"
        out.append(ev("user.registered", user_id=user, country="DE", product="free", display_name=user))
        for a in POP:
            for m in range(6):
                out.append(play(user, tid(a, m), 4))
    return out


@pytest.fixture
def world() -> World:
    w = World()
    w.feed(planted_events())
    return w


def shelf_tracks(shelf: dict) -> list[str]:
    return [internal_id(i["id"]) for i in shelf["items"]]


async def home(c: TestClient, world: World, user: str, limit: int = 50) -> dict:
    status, body = await call(c, "GET", f"/v1/views/home?limit={limit}", world.token(user))
    assert status == 200, body
    return body


def test_home_is_personalized_filtered_and_diverse(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        body = await home(c, world, "fan")
        shelves = body["shelves"]
        kinds = [s["kind"] for s in shelves]
        assert "discover-weekly" in kinds and "daily-mix" in kinds and "because-you-listened" in kinds
        assert "popular" not in kinds and "genre-picks" not in kinds  # popularity is a signal, not a shelf
        titles = {s["title"] for s in shelves}
        assert "Daily Mix 1" in titles and "Because you listened to Song ra0t0" in titles
        every = [t for s in shelves for t in shelf_tracks(s)]
        assert every and len(every) == len(set(every))  # never twice on a page
        # personalized: the fan's planted taste is rock; pop is what DE streams most, yet rock leads
        assert Counter(genre_of(t) for t in every).most_common(1)[0][0] == "rock"
        dw = next(s for s in shelves if s["kind"] == "discover-weekly")
        assert genre_of(shelf_tracks(dw)[0]) == "rock"
        assert not {"ra0t0", "ra0t1", "ra1t0", "ra1t1", "ra0t2"} & set(shelf_tracks(dw))  # new to the fan
        # the co-listened tracks that are taken down / not licensed in DE are on no shelf
        assert TAKEN_DOWN not in every and BLOCKED not in every
        assert "ra2t1" in every  # while their artist's playable co-listened tracks are
        # at most 2 tracks per artist per shelf (the fan's artists have 6 tracks each)
        artists_per_shelf = [Counter(t[:3] for t in shelf_tracks(s)) for s in shelves]
        assert max(max(cnt.values()) for cnt in artists_per_shelf) == 2
        for s in shelves:
            assert s["context_uri"] == "spotify:playlist:" + public_id("recs:fan:" + s["id"])
            assert all(i["is_playable"] for i in s["items"])
        # limit: the first tracks of each shelf
        small = await home(c, world, "fan", limit=2)
        assert [shelf_tracks(s) for s in small["shelves"]] == [shelf_tracks(s)[:2] for s in shelves]

        # a takedown now, or a new play, shows on the next home at once (the shelves cache keeps neither)
        first = shelf_tracks(shelves[0])[0]
        played = shelf_tracks(shelves[0])[1]
        world.feed([ev("track.taken_down", track_id=first, territories=["DE"], reason="DMCA notice"),
                    ev("play.completed", play_id="fresh", user_id="fan", track_id=played, ms_played=200_000,
                       country="DE", product="premium", at=int(NOW * 1000))])
        again = [t for s in (await home(c, world, "fan"))["shelves"] for t in shelf_tracks(s)]
        assert first not in again and played not in again and again

        # cold start: popular in the user's country, then genre picks
        cold = (await home(c, world, "newbie"))["shelves"]
        assert cold[0]["kind"] == "popular" and cold[0]["title"] == "Popular in DE"
        assert {genre_of(t) for t in shelf_tracks(cold[0])[:4]} == {"pop"}
        assert [s["kind"] for s in cold[1:]] and all(s["kind"] == "genre-picks" for s in cold[1:])
        assert TAKEN_DOWN not in {t for s in cold for t in shelf_tracks(s)}
        assert (await call(c, "GET", "/v1/views/home", world.token("nobody")))[0] == 403

    run(world, scenario)


def test_discover_weekly_is_frozen_per_iso_week(world: World) -> None:
    async def dw_at(c: TestClient, at: float) -> dict[str, Any]:
        world.now = at
        return next(s for s in (await home(c, world, "fan"))["shelves"] if s["kind"] == "discover-weekly")

    async def scenario(c: TestClient) -> None:
        monday = await dw_at(c, W23_MONDAY + 9 * 3600)
        # Sunday night, on the fan's speaker (another device type and hour): the same shelf
        world.feed([ev("device.registered", user_id="fan", device_id="sp", device_type="speaker", name="Sp"),
                    ev("player.transferred", user_id="fan", device_id="sp", play=False)])
        sunday = await dw_at(c, W23_MONDAY + 6 * DAY_S + 21 * 3600)
        next_week = await dw_at(c, W23_MONDAY + 7 * DAY_S + 9 * 3600)
        assert monday["id"] == sunday["id"] == "discover-weekly:2026-W23"
        assert shelf_tracks(monday) == shelf_tracks(sunday) and len(shelf_tracks(monday)) >= 10
        assert next_week["id"] == "discover-weekly:2026-W24"
        assert shelf_tracks(next_week) != shelf_tracks(monday)

    run(world, scenario)


def test_shelf_is_a_playable_playlist_context(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        tok = world.token("fan")
        dw = next(s for s in (await home(c, world, "fan"))["shelves"] if s["kind"] == "discover-weekly")
        pid = dw["context_uri"].split(":")[2]
        assert internal_id(pid) == "recs:fan:discover-weekly:2026-W22"
        status, playlist = await call(c, "GET", f"/v1/playlists/{pid}", tok)
        assert status == 200 and playlist["name"] == "Discover Weekly" and playlist["owner"]["id"] == "playlog"
        ids = [internal_id(i["track"]["id"]) for i in playlist["tracks"]["items"]]
        assert ids[: len(dw["items"])] == shelf_tracks(dw) and len(ids) == dw["total"]
        # another user cannot read the fan's shelf; nobody can edit it
        assert (await call(c, "GET", f"/v1/playlists/{pid}", world.token("jazzfan")))[0] == 404
        status, _ = await call(c, "POST", f"/v1/playlists/{pid}/tracks", tok, json={"uris": ["spotify:track:pa0t0"]})
        assert status == 403
        # play it as a context: the player's context names the shelf
        status, _ = await call(c, "PUT", "/v1/me/player/play", tok, json={"context_uri": dw["context_uri"]})
        assert status == 204
        event = world.publisher.events[-1]
        assert event["context_uri"] == "spotify:playlist:recs:fan:discover-weekly:2026-W22"
        assert event["track_ids"] == ids
        status, state = await call(c, "GET", "/v1/me/player", tok)
        assert state["context"]["uri"] == dw["context_uri"]
        # a daily mix resolves the same way
        mix = next(s for s in (await home(c, world, "fan"))["shelves"] if s["kind"] == "daily-mix")
        status, playlist = await call(c, "GET", f"/v1/playlists/{mix['context_uri'].split(':')[2]}", tok)
        assert status == 200 and playlist["name"] == mix["title"]
        for missing in ("recs:fan:daily-mix:9", "recs:fan:discover-weekly:soon", "recs:fan:radio:track:nope"):
            assert (await call(c, "GET", f"/v1/playlists/{public_id(missing)}", tok))[0] == 404, missing
        # last week's Discover Weekly is still resolvable by its id, and it is another list
        last = await call(c, "GET", f"/v1/playlists/{public_id('recs:fan:discover-weekly:2026-W21')}", tok)
        assert last[0] == 200 and [internal_id(i["track"]["id"]) for i in last[1]["tracks"]["items"]] != ids

    run(world, scenario)


def test_radio_for_a_track_seed(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        tok = world.token("jazzfan")
        status, body = await call(c, "GET", "/v1/views/radio?seed=spotify:track:ra0t0&limit=20", tok)
        assert status == 200 and body["kind"] == "radio" and body["title"] == "Song ra0t0 Radio"
        ids = shelf_tracks(body)
        assert ids[0] == "ra0t0" and len(ids) == len(set(ids)) > 5
        # the seed's co-listened rock leads the station; the filtered ones never play
        assert {genre_of(t) for t in ids[:6]} == {"rock"}
        assert TAKEN_DOWN not in ids and BLOCKED not in ids
        assert max(Counter(t[:3] for t in ids[1:]).values()) <= 2
        pid = body["context_uri"].split(":")[2]
        assert internal_id(pid) == "recs:jazzfan:radio:track:ra0t0"
        status, playlist = await call(c, "GET", f"/v1/playlists/{pid}", tok)
        assert status == 200 and [internal_id(i["track"]["id"]) for i in playlist["tracks"]["items"]][:20] == ids
        status, body = await call(c, "GET", "/v1/views/radio?seed=spotify:artist:ja1", tok)
        assert status == 200 and genre_of(shelf_tracks(body)[0]) == "jazz"
        assert (await call(c, "GET", "/v1/views/radio?seed=spotify:track:nope", tok))[0] == 404
        assert (await call(c, "GET", "/v1/views/radio?seed=spotify:album:x", tok))[0] == 400
        assert (await call(c, "GET", "/v1/views/radio", tok))[0] == 400

    run(world, scenario)


def test_recommendations_seeds_validation_and_shape(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        tok = world.token("fan")
        status, body = await call(c, "GET", "/v1/recommendations?seed_tracks=ra0t0&seed_genres=rock&limit=10", tok)
        assert status == 200 and len(body["tracks"]) == 10
        ids = [internal_id(t["id"]) for t in body["tracks"]]
        assert "ra0t0" not in ids and TAKEN_DOWN not in ids and BLOCKED not in ids
        assert {genre_of(t) for t in ids[:5]} == {"rock"}
        assert [(s["id"], s["type"]) for s in body["seeds"]] == [("ra0t0", "TRACK"), ("rock", "GENRE")]
        track_seed = body["seeds"][0]
        assert track_seed["href"].endswith("/v1/tracks/ra0t0") and body["seeds"][1]["href"] is None
        assert track_seed["initialPoolSize"] >= track_seed["afterFilteringSize"] > 0
        assert track_seed["afterRelinkingSize"] == track_seed["afterFilteringSize"]
        six = "ra0t0,ra0t1,ra1t0,ra1t1,ra2t1"
        status, body = await call(c, "GET", f"/v1/recommendations?seed_tracks={six}&seed_artists=ja0", tok)
        assert status == 400 and "1 to 5 seeds" in body["error"]["message"]
        assert (await call(c, "GET", f"/v1/recommendations?seed_tracks={six}", tok))[0] == 200
        assert (await call(c, "GET", "/v1/recommendations", tok))[0] == 400
        status, body = await call(c, "GET", "/v1/recommendations?seed_tracks=nope", tok)
        assert status == 404 and "seed track 'nope'" in body["error"]["message"]
        status, body = await call(c, "GET", "/v1/recommendations?seed_artists=nobody", tok)
        assert status == 404 and "seed artist" in body["error"]["message"]
        status, body = await call(c, "GET", "/v1/recommendations?seed_genres=polka", tok)
        assert status == 400 and "available-genre-seeds" in body["error"]["message"]
        status, body = await call(c, "GET", "/v1/recommendations/available-genre-seeds", tok)
        assert status == 200 and body == {"genres": ["jazz", "pop", "rock"]}

    run(world, scenario)


def test_ranker_context_from_user_document_and_player(world: World) -> None:
    from playback import recs

    replica = world.replica
    fan = dict(replica.users["fan"])
    now_ms = int(NOW * 1000)
    ctx = recs.context(replica, "fan", fan, now_ms)
    # no player state: no device; the users view has no offset nor explicit setting: UTC, allowed
    assert (ctx.country, ctx.device, ctx.utc_offset_min, ctx.allow_explicit) == ("DE", None, 0, True)
    world.feed([ev("device.registered", user_id="fan", device_id="sp", device_type="speaker", name="Sp"),
                ev("player.transferred", user_id="fan", device_id="sp", play=False)])
    opted = {**replica.users["fan"], "utc_offset_min": -300, "explicit_content": {"filter_enabled": True}}
    ctx = recs.context(replica, "fan", opted, now_ms)
    assert (ctx.device, ctx.utc_offset_min, ctx.allow_explicit) == ("speaker", -300, False)
    # 20:26 UTC at UTC-5 is 15:26 local, for the request and for a play at the same instant alike
    assert ctx.local_hour() == ctx.local_hour(now_ms) == 15
    assert recs.context(replica, "fan", {**fan, "allow_explicit": False}, now_ms).allow_explicit is False


def test_follows_feed_the_candidates(world: World) -> None:
    """A walk on the follow graph: the jazz fan follows the rock fan, whose top artists (ra0, ra1) then
    reach the jazz fan's shelves; before, nothing the jazz fan did leads to them."""
    fan_artists = {"ra0", "ra1"}

    def artists_on(body: dict) -> set[str]:
        return {internal_id(i["id"])[:3] for s in body["shelves"] for i in s["items"]}

    async def scenario(c: TestClient) -> None:
        before = artists_on(await home(c, world, "jazzfan"))
        assert not before & fan_artists
        world.feed([ev("library.followed", user_id="jazzfan", target_type="user", target_id="fan", public=True)])
        after = artists_on(await home(c, world, "jazzfan"))
        assert after & fan_artists and "pa1" not in after
        world.feed([ev("library.followed", user_id="jazzfan", target_type="artist", target_id="pa1", public=True)])
        assert "pa1" in artists_on(await home(c, world, "jazzfan"))

    run(world, scenario)
