"""The trust boundary at the API, in process: the manifest issues the play, ``POST /v1/events`` takes
only plays the server issued to the caller, decides country and product, stamps ``received_at`` and
bounds event time; the event ids it has seen are not accepted twice.

Uses the in-process world of tests/unit/test_api_routes.py (replica fed by the real view folds,
events kept by a memory publisher)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from core.timefmt import format_ts
from playback.grants import PlayGrants, RecentIds
from processors import grants
from processors.rules import CLIENT_SKEW_MS, DAY_MS, OFFLINE_LICENCE_MS
from tests.unit.test_api_routes import NOW, SETTINGS, World, call, catalog_events, run

NOW_MS = int(NOW * 1000)


@pytest.fixture
def world() -> World:
    w = World()
    w.feed(catalog_events())
    return w


async def issued(c: TestClient, world: World, user: str, track: str = "t1") -> str:
    status, body = await call(c, "GET", f"/v1/playback/{track}/manifest", world.token(user))
    assert status == 200, body
    return body["play_id"]


def event(kind: str, play_id: str, eid: str, *, user: str = "u1", track: str = "t1", at: int = NOW_MS,
          ms: int = 0, **fields: Any) -> dict:
    e: dict[str, Any] = {"type": f"play.{kind}", "event_id": eid, "occurred_at": format_ts(at), "play_id": play_id,
                         "user_id": user, "track_id": track}
    if kind == "started":
        e.update(device_id="d1", context_uri=None, offline=False)
    else:
        e["ms_played"] = ms
        if kind == "progress":
            e["context_uri"] = None
    e.update(fields)
    return e


def test_manifest_issues_a_play_grant_bound_to_user_track_and_time(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        a, b = await issued(c, world, "u1"), await issued(c, world, "u1")
        assert a != b  # one play per manifest request, even from the cached manifest
        g = grants.parse_grant(a)
        assert (g.user_id, g.track_id, g.issued_ms) == ("u1", "t1", NOW_MS)
        assert PlayGrants(SETTINGS.token_secret).verify(a)[0] == g
        assert PlayGrants("another secret").verify(a)[0] is None
        alias = grants.parse_grant(await issued(c, world, "u1", "t1b"))
        assert alias.track_id == "t1"  # bound to the canonical track
        status, m1 = await call(c, "GET", "/v1/playback/t1/manifest", world.token("u1"))
        status, m2 = await call(c, "GET", "/v1/playback/t1/manifest", world.token("u1"))
        assert {k: v for k, v in m1.items() if k != "play_id"} == {k: v for k, v in m2.items() if k != "play_id"}

    run(world, scenario)


def test_a_legit_client_play_is_accepted_stamped_and_completed_from_the_users_view(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        pid = await issued(c, world, "u1")
        batch = [event("started", pid, "c-1"),  # no country/product: filled from the user's view
                 event("progress", pid, "c-2", at=NOW_MS + 10_000, ms=10_000, country="DE"),
                 event("completed", pid, "c-3", at=NOW_MS + 40_000, ms=40_000, country="DE", product="premium")]
        world.now = NOW + 40
        status, body = await call(c, "POST", "/v1/events", world.token("u1"), json={"events": batch})
        assert (status, body) == (202, {"accepted": 3})
        produced = world.publisher.events
        assert [e["event_id"] for e in produced] == ["c-1", "c-2", "c-3"]
        assert {(e["country"], e["product"], e["received_at"]) for e in produced} == {("DE", "premium", NOW_MS + 40_000)}
        assert all(grants.client_event_reason(e) is None for e in produced)
        # an alias-id play: the event may name the alias, the server records the issued (canonical) track
        alias_pid = await issued(c, world, "u1", "t1b")
        status, _ = await call(c, "POST", "/v1/events", world.token("u1"),
                               json=[event("started", alias_pid, "c-4", track="t1b", at=NOW_MS + 40_000)])
        assert status == 202 and world.publisher.events[-1]["track_id"] == "t1"

    run(world, scenario)


def test_forged_client_events_are_refused_with_a_reason_and_never_produced(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        mine, theirs = await issued(c, world, "u1"), await issued(c, world, "u2")
        free_de = await issued(c, world, "u2")  # u2: a DE free listener
        real = PlayGrants(SETTINGS.token_secret)
        t2 = real.issue("u1", "t2", NOW_MS)  # a genuine grant, for another track (t2 has no audio)
        g = grants.parse_grant(mine)
        tampered = grants.format_grant("u1", "t1", g.issued_ms - DAY_MS, g.nonce, g.sig)  # back-dated issue time
        forged_sig = grants.format_grant("u1", "t1", NOW_MS, "AAAAAAAAAAAAAAAA", "A" * 22)
        cases = {
            "another user": (event("completed", theirs, "f-1", ms=200_000), "u1"),
            "not a server-issued play": (event("completed", "p-made-up", "f-2", ms=200_000), "u1"),
            "signature": (event("completed", forged_sig, "f-3", ms=200_000), "u1"),
            "signature ": (event("completed", tampered, "f-4", ms=200_000), "u1"),
            "another track": (event("completed", t2, "f-5", ms=200_000), "u1"),
            "country": (event("completed", free_de, "f-6", user="u2", ms=200_000, country="US"), "u2"),
            "product": (event("completed", free_de, "f-7", user="u2", ms=200_000, product="premium"), "u2"),
            "before the play was issued": (event("completed", mine, "f-8", at=0, ms=200_000), "u1"),
            "after the event was received": (event("completed", mine, "f-9", at=4_070_908_800_000, ms=200_000), "u1"),
            "access token": (event("completed", mine, "f-10", user="u2", ms=200_000), "u1"),
        }
        for expect, (e, user) in cases.items():
            status, body = await call(c, "POST", "/v1/events", world.token(user), json=[e])
            assert status == 400, (expect, body)
            assert body["accepted"] == 0 and expect.strip() in body["rejected"][0]["reason"], (expect, body)
        assert world.publisher.events == []
        assert real.verify(tampered)[0] is None and real.verify(forged_sig)[0] is None

    run(world, scenario)


def test_grant_expiry_and_the_offline_window(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        pid = await issued(c, world, "u1")
        played = NOW_MS + DAY_MS  # offline, uploaded days later with its original time
        world.now = NOW + (OFFLINE_LICENCE_MS - 1000) / 1000
        status, _ = await call(c, "POST", "/v1/events", world.token("u1"),
                               json=[event("completed", pid, "o-1", at=played, ms=45_000)])
        assert status == 202 and world.publisher.events[-1]["received_at"] == NOW_MS + OFFLINE_LICENCE_MS - 1000
        world.now = NOW + (OFFLINE_LICENCE_MS + 1000) / 1000
        status, body = await call(c, "POST", "/v1/events", world.token("u1"),
                                  json=[event("completed", pid, "o-2", at=played, ms=46_000)])
        assert status == 400 and "offline licence" in body["rejected"][0]["reason"]
        world.now = NOW
        status, body = await call(c, "POST", "/v1/events", world.token("u1"),
                                  json=[event("progress", pid, "o-3", at=NOW_MS + CLIENT_SKEW_MS + 1, ms=1)])
        assert status == 400 and "after the event was received" in body["rejected"][0]["reason"]

    run(world, scenario)


def test_a_replayed_event_id_is_refused(world: World) -> None:
    async def scenario(c: TestClient) -> None:
        pid = await issued(c, world, "u1")
        e = event("completed", pid, "r-1", ms=45_000)
        assert (await call(c, "POST", "/v1/events", world.token("u1"), json=[e]))[0] == 202
        status, body = await call(c, "POST", "/v1/events", world.token("u1"), json=[{**e, "ms_played": 200_000}])
        assert status == 400 and "already" in body["rejected"][0]["reason"]
        twice = event("progress", pid, "r-2", ms=10_000)
        status, body = await call(c, "POST", "/v1/events", world.token("u1"), json=[twice, twice])
        assert status == 400 and body["accepted"] == 1 and body["rejected"][0]["index"] == 1
        # a batch the broker refused does not burn its event ids: the client may send it again
        world.publisher.fail = True
        assert (await call(c, "POST", "/v1/events", world.token("u1"), json=[event("progress", pid, "r-3")]))[0] == 503
        world.publisher.fail = False
        assert (await call(c, "POST", "/v1/events", world.token("u1"), json=[event("progress", pid, "r-3")]))[0] == 202
        assert [x["event_id"] for x in world.publisher.events] == ["r-1", "r-2", "r-3"]

    run(world, scenario)


def test_recent_ids_are_bounded() -> None:
    ids = RecentIds(3)
    assert all(ids.add(x) for x in "abc")
    assert not ids.add("a")
    assert ids.add("d") and len(ids) == 3 and "a" not in ids and ids.add("a")
    ids.discard("a")
    assert "a" not in ids
