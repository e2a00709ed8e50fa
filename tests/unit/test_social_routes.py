"""The social routes in process (playback/routes/social.py): follows, follower counts, the friends'
activity feed with private sessions, and Blends, over a replica fed by the real folds (the World of
test_api_routes: what the API produces is folded by the worker's view folds on ``deliver()``)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from playback.ids import public_id
from tests.unit.test_api_routes import NOW, World, call, catalog_events, ev, run

MS = int(NOW * 1000)


@pytest.fixture
def world() -> World:
    w = World()
    w.feed(catalog_events())
    return w


def play(user: str, track: str, play_id: str, at: int, country: str = "DE", product: str = "free") -> dict:
    return ev("play.completed", play_id=play_id, user_id=user, track_id=track, ms_played=200_000, country=country,
              product=product, at=at)


def test_follow_artists_and_users_with_counts_cursor_paging_and_errors(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        t1, t2 = world.token("u1"), world.token("u2")
        assert (await call(c, "PUT", "/v1/me/following?type=artist&ids=ar1,ar2", t1))[0] == 204
        assert (await call(c, "PUT", "/v1/me/following?type=artist", t2, json={"ids": ["ar1"]}))[0] == 204
        # read-your-writes: before the worker folded anything
        status, body = await call(c, "GET", "/v1/me/following?type=artist&limit=1", t1)
        assert status == 200
        page = body["artists"]
        assert [a["id"] for a in page["items"]] == ["ar1"] and page["total"] == 2
        assert page["cursors"]["after"] == "ar1" and page["next"].endswith("&after=ar1")
        assert page["items"][0]["followers"]["total"] == 2
        status, body = await call(c, "GET", "/v1/me/following?type=artist&limit=1&after=ar1", t1)
        assert [a["id"] for a in body["artists"]["items"]] == ["ar2"] and body["artists"]["next"] is None
        assert body["artists"]["cursors"] == {}
        world.deliver()
        assert world.replica.pending_library == {}
        assert (await call(c, "GET", "/v1/artists/ar1", t1))[1]["followers"]["total"] == 2
        assert (await call(c, "DELETE", "/v1/me/following?type=artist&ids=ar1", t2))[0] == 204
        assert (await call(c, "GET", "/v1/artists/ar1", t1))[1]["followers"]["total"] == 1
        status, body = await call(c, "GET", "/v1/me/following/contains?type=artist&ids=ar1,ar2,nope", t2)
        assert status == 200 and body == [False, False, False]
        # users
        assert (await call(c, "PUT", "/v1/me/following?type=user&ids=u2", t1))[0] == 204
        assert (await call(c, "GET", "/v1/me/following/contains?type=user&ids=u2,u3", t1))[1] == [True, False]
        assert world.replica.follows("u1", "user") == ["u2"]
        # unhappy paths: nothing produced
        produced = len(world.publisher.events)
        status, body = await call(c, "PUT", "/v1/me/following?type=artist&ids=ar1,nope", t1)
        assert status == 404 and body["error"]["message"] == "Artist not found: nope"
        assert body["error"]["reason"] == "ARTIST_NOT_FOUND"
        status, body = await call(c, "PUT", "/v1/me/following?type=user&ids=ghost", t1)
        assert status == 404 and body["error"]["message"] == "User not found: ghost"
        status, body = await call(c, "PUT", "/v1/me/following?type=album&ids=al1", t1)
        assert status == 400 and "Invalid type" in body["error"]["message"]
        assert (await call(c, "PUT", "/v1/me/following?type=user&ids=u1", t1))[0] == 400
        assert (await call(c, "PUT", "/v1/me/following?type=user", t1))[0] == 400
        assert (await call(c, "GET", "/v1/me/following?type=user", t1))[0] == 400
        assert len(world.publisher.events) == produced
        types = [e["type"] for e in world.publisher.events]
        assert types.count("library.followed") == 4 and types.count("library.unfollowed") == 1

    run(world, scenario)


def test_playlist_followers_public_flag_and_counts(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        t1, t2, t3 = world.token("u1"), world.token("u2"), world.token("u3")
        status, pl = await call(c, "POST", "/v1/me/playlists", t1, json={"name": "Mix"})
        pid = pl["id"]
        assert pl["followers"]["total"] == 0
        assert (await call(c, "PUT", f"/v1/playlists/{pid}/followers", t2, json={"public": False}))[0] == 200
        assert (await call(c, "PUT", f"/v1/playlists/{pid}/followers", t3))[0] == 200
        assert (await call(c, "GET", f"/v1/playlists/{pid}", t1))[1]["followers"]["total"] == 2
        # a non-public follow is told only to its follower
        assert (await call(c, "GET", f"/v1/playlists/{pid}/followers/contains?ids=u2,u3", t1))[1] == [False, True]
        assert (await call(c, "GET", f"/v1/playlists/{pid}/followers/contains?ids=u2", t2))[1] == [True]
        assert (await call(c, "GET", f"/v1/playlists/{pid}/followers/contains", t1))[1] == [False]
        world.deliver()
        assert (await call(c, "DELETE", f"/v1/playlists/{pid}/followers", t3))[0] == 200
        assert (await call(c, "GET", f"/v1/playlists/{pid}", t1))[1]["followers"]["total"] == 1
        status, body = await call(c, "PUT", "/v1/playlists/missing/followers", t2)
        assert status == 404 and body["error"]["message"] == "Playlist not found: missing"
        status, body = await call(c, "PUT", f"/v1/playlists/{pid}/followers", t2, json={"public": "yes"})
        assert status == 400

    run(world, scenario)


def test_friends_activity_hides_private_session_plays_and_erased_users(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        t1, t2 = world.token("u1"), world.token("u2")
        assert (await call(c, "PUT", "/v1/me/following?type=user&ids=u2,u3", t1))[0] == 204
        world.feed([play("u2", "t1", "q1", MS - 60_000), play("u3", "t2", "q3", MS - 30_000, "US", "premium")])
        status, body = await call(c, "GET", "/v1/me/friends/activity", t1)
        assert status == 200
        assert [f["user"]["id"] for f in body["friends"]] == ["u3", "u2"]  # newest play first
        u2 = body["friends"][1]
        assert u2["user"]["display_name"] == "U2"
        assert [p["track"]["id"] for p in u2["plays"]] == ["t1"]  # one play, though stream + complete rows
        assert u2["plays"][0]["track"]["name"] == "Midnight River" and u2["plays"][0]["context"] is None
        assert u2["latest_played_at"] == u2["plays"][0]["played_at"]
        # u2 goes private (the toggle's time: now), plays t2 then; ends the session, plays t1 again
        assert (await call(c, "PUT", "/v1/me/player/private-session?state=true", t2))[0] == 204
        devices = (await call(c, "GET", "/v1/me/player/devices", t2))[1]["devices"]
        assert devices and all(d["is_private_session"] for d in devices)
        world.feed([play("u2", "t2", "q2", MS + 1_000)])
        world.now = NOW + 10
        assert (await call(c, "PUT", "/v1/me/player/private-session?state=false", t2))[0] == 204
        devices = (await call(c, "GET", "/v1/me/player/devices", t2))[1]["devices"]
        assert not any(d["is_private_session"] for d in devices)
        world.feed([play("u2", "t1", "q4", MS + 20_000)])
        body = (await call(c, "GET", "/v1/me/friends/activity", t1))[1]
        assert [f["user"]["id"] for f in body["friends"]] == ["u2", "u3"]
        assert [p["track"]["id"] for p in body["friends"][0]["plays"]] == ["t1", "t1"]  # not the private t2
        world.deliver()  # the toggles reach the library view: same answer
        body2 = (await call(c, "GET", "/v1/me/friends/activity?limit=1", t1))[1]
        assert [p["played_at"] for p in body2["friends"][0]["plays"]] == [body["friends"][0]["plays"][0]["played_at"]]
        # an erased friend disappears from the feed
        world.feed([ev("user.erasure_requested", user_id="u3")])
        body = (await call(c, "GET", "/v1/me/friends/activity", t1))[1]
        assert [f["user"]["id"] for f in body["friends"]] == ["u2"]
        assert (await call(c, "PUT", "/v1/me/following?type=user&ids=u3", t1))[0] == 404  # no new follows
        assert (await call(c, "DELETE", "/v1/me/following?type=user&ids=u3", t1))[0] == 204  # but unfollow works
        assert world.replica.follows("u1", "user") == ["u2"]
        assert (await call(c, "PUT", "/v1/me/player/private-session?state=maybe", t2))[0] == 400

    run(world, scenario)


def test_blend_for_mutual_follows_only_members_read_it_and_it_cannot_be_edited(world: World) -> None:
    world.feed([play("u1", "t2", "b1", MS - 90_000, product="premium"), play("u2", "t1", "b2", MS - 80_000)])
    blend = public_id("blend:u1:u2")

    async def scenario(c: TestClient) -> None:
        t1, t2, t3 = world.token("u1"), world.token("u2"), world.token("u3")
        assert (await call(c, "PUT", "/v1/me/following?type=user&ids=u2", t1))[0] == 204
        status, body = await call(c, "GET", f"/v1/playlists/{blend}", t1)
        assert status == 404 and "follow each other" in body["error"]["message"]  # u2 does not follow back yet
        assert (await call(c, "GET", "/v1/me/blends", t1))[1]["total"] == 0
        assert (await call(c, "PUT", "/v1/me/following?type=user&ids=u1", t2))[0] == 204
        status, body = await call(c, "GET", "/v1/me/blends", t1)
        assert status == 200 and body["total"] == 1 and body["items"][0]["id"] == blend
        assert body["items"][0]["name"] == "U1 + U2"
        status, pl = await call(c, "GET", f"/v1/playlists/{blend}", t1)
        assert status == 200
        tracks = {i["track"]["id"]: i["added_by"]["id"] for i in pl["tracks"]["items"]}
        # ar2 (u1's taste) and ar1 (u2's): t3 (ar1) is taken down in DE, t1b is an alias of t1
        assert tracks == {"t2": "u1", "t1": "u2"}
        status, page = await call(c, "GET", f"/v1/playlists/{blend}/tracks", t2)
        assert status == 200 and {i["track"]["id"] for i in page["items"]} == {"t1", "t2"}
        assert (await call(c, "GET", f"/v1/playlists/{blend}", t3))[0] == 404  # not a member
        status, body = await call(c, "POST", f"/v1/playlists/{blend}/tracks", t1, json={"uris": ["spotify:track:t3"]})
        assert status == 403 and "cannot be edited" in body["error"]["message"]
        assert (await call(c, "PUT", f"/v1/playlists/{blend}/followers", t1))[0] == 403
        assert (await call(c, "DELETE", "/v1/me/following?type=user&ids=u2", t1))[0] == 204
        assert (await call(c, "GET", f"/v1/playlists/{blend}", t2))[0] == 404
        assert (await call(c, "GET", "/v1/me/blends", t2))[1]["items"] == []

    run(world, scenario)


def test_me_library_follows_artists_users_playlists_and_stars_tracks(world: World) -> None:
    """Spotify's Feb-2026 ``/v1/me/library`` (what spotipy 2.26's follow calls send)."""
    async def scenario(c: TestClient) -> None:
        t1 = world.token("u1")
        status, pl = await call(c, "POST", "/v1/me/playlists", world.token("u2"), json={"name": "Theirs"})
        uris = f"spotify:artist:ar1,spotify:user:u2,spotify:playlist:{pl['id']},spotify:track:t1b,spotify:album:al1"
        assert (await call(c, "PUT", f"/v1/me/library?uris={uris}", t1))[0] == 200
        status, body = await call(c, "GET", f"/v1/me/library/contains?uris={uris},spotify:artist:ar2", t1)
        assert status == 200 and body == [True, True, True, True, True, False]
        assert world.replica.follows("u1", "artist") == ["ar1"] and world.replica.follows("u1", "user") == ["u2"]
        starred = [(e["item_type"], e["item_id"]) for e in world.publisher.events if e["type"] == "library.starred"]
        assert starred == [("track", "t1"), ("album", "al1")]  # the canonical track id, as Subsonic's star
        assert (await call(c, "GET", f"/v1/playlists/{pl['id']}", t1))[1]["followers"]["total"] == 1
        world.deliver()
        assert (await call(c, "DELETE", "/v1/me/library?uris=spotify:artist:ar1,spotify:track:t1", t1))[0] == 200
        body = (await call(c, "GET", f"/v1/me/library/contains?uris={uris}", t1))[1]
        assert body == [False, True, True, False, True]
        produced = len(world.publisher.events)
        status, body = await call(c, "PUT", "/v1/me/library?uris=spotify:artist:ar1,spotify:track:nope", t1)
        assert status == 404 and body["error"]["message"] == "Track not found: nope"
        assert (await call(c, "PUT", "/v1/me/library?uris=spotify:show:x", t1))[0] == 400
        assert (await call(c, "PUT", "/v1/me/library", t1))[0] == 400
        assert len(world.publisher.events) == produced

    run(world, scenario)
