"""The "Trust" guarantees in process, without a broker: readiness gate, durable-write refusals,
territory-signed URLs, the CDN's takedown view and edge-cache purge.

The same guarantees end to end (real broker, real processes): tests/integration/test_api_ready.py,
test_api_durable.py, test_cdn_takedown.py, test_server_secrets.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.settings import Settings
from ingest.store import AudioStore
from playback import cdn, signing
from playback.api import KafkaPublisher, PublishError
from playback.edge_cache import EdgeCache
from playback.replica import Replica, ReplicaFeed
from playback.signing import Signer, canonical_string
from processors import views
from tests.unit.test_api_routes import T0, World, call, catalog_events, ev, rendition, rights, run, track

NOW = 1_780_000_000.0


# -- readiness ---------------------------------------------------------------------------------------


class _Rebuilding(Replica):
    ready = False  # a started feed that has not reached its start offsets yet


def test_not_caught_up_means_503_with_retry_after_on_every_v1_route_but_ops_stay_up() -> None:
    world = World()
    world.replica = _Rebuilding()
    world.api.replica = world.replica
    world.feed(catalog_events())  # even a full state is not served before the feed says caught up
    tok = world.token("u1")

    async def scenario(c: TestClient):
        for method, path in [("GET", "/v1/tracks/t1"), ("GET", "/v1/views/home"), ("GET", "/v1/me/player"),
                             ("PUT", "/v1/me/player/pause"), ("GET", "/v1/search?q=river")]:
            resp = await c.request(method, path, headers=tok)
            body = await resp.json()
            assert resp.status == 503 and resp.headers["Retry-After"].isdigit(), (path, resp.status)
            assert body["error"]["status"] == 503 and "catching up" in body["error"]["message"]
        assert (await call(c, "GET", "/v1/tracks/t1"))[0] == 401  # a bad token is still 401 first
        status, health = await call(c, "GET", "/healthz")
        assert status == 503 and health["ready"] is False and "catching up" in health["error"]
        for path in ("/metrics", "/openapi.json"):
            assert (await c.get(path)).status == 200
        assert world.publisher.events == []

    run(world, scenario)


def test_ready_replica_answers_and_healthz_says_why_writes_fail() -> None:
    world = World()
    world.feed(catalog_events())
    tok = world.token("u1")

    async def scenario(c: TestClient):
        assert (await call(c, "GET", "/healthz"))[0] == 200
        assert (await call(c, "GET", "/v1/tracks/t1", tok))[0] == 200
        world.publisher.fail = True
        resp = await c.put("/v1/me/player/play", headers=tok, json={"uris": ["spotify:track:t1"]})
        assert resp.status == 503 and resp.headers["Retry-After"].isdigit()
        status, health = await call(c, "GET", "/healthz")
        assert status == 503 and health["writes_ok"] is False and "publishing disabled" in health["error"]
        assert world.replica.player_state("u1") is None  # nothing recorded for a refused write

    run(world, scenario)


def test_player_commands_wait_for_the_acknowledgement_by_default() -> None:
    assert World().api.ack_player_commands is True


def test_feed_is_caught_up_only_at_the_end_offsets_seen_at_start() -> None:
    feed = ReplicaFeed(Replica(search=False))
    assert not feed.caught_up
    feed._check_caught_up()  # not assigned yet: no targets, not caught up
    assert not feed.caught_up
    feed.start_targets = {("t.view.users", 0): 10, ("t.view.users", 1): 0, ("t.player", 0): 3}
    feed.positions.update({("t.view.users", 0): 9, ("t.player", 0): 3})
    feed._check_caught_up()
    assert not feed.caught_up and feed.progress()["records_behind"] == 1
    feed.positions[("t.view.users", 0)] = 10
    feed._check_caught_up()
    assert feed.caught_up and feed.progress() == {"caught_up": True, "assigned": True, "partitions_behind": 0,
                                                   "records_behind": 0}
    with pytest.raises(ValueError):
        ReplicaFeed(Replica(search=False), ("catalog", "nope"))


def test_a_replica_never_started_is_plain_state_and_ready() -> None:
    r = Replica(search=False)
    assert r.ready
    r.feed._stop.set()  # as after start + stop: a feed that was started
    assert not r.ready
    r.ready = True  # forced (a benchmark that filled the state by hand)
    assert r.ready


def test_kafka_publisher_refuses_at_once_while_the_broker_is_unreachable() -> None:
    from devstack.supervisor import free_port

    publisher = KafkaPublisher(Settings(bootstrap_servers=f"127.0.0.1:{free_port()}", topic_prefix="x."))
    try:
        assert publisher.health() is not None

        async def write():
            await publisher.publish([{"type": "player.paused", "event_id": "e1", "occurred_at": 1,
                                      "user_id": "u", "device_id": "d", "position_ms": 0}])

        with pytest.raises(PublishError):
            asyncio.run(write())
    finally:
        publisher.close()


# -- territory-signed URLs -----------------------------------------------------------------------------


def test_territory_is_a_fourth_signed_line_and_the_old_form_still_verifies() -> None:
    assert canonical_string("/audio/f/0", "100", "k1", "DE") == b"/audio/f/0\n100\nk1\nDE"
    assert canonical_string("/audio/f/0", "100", "k1") == b"/audio/f/0\n100\nk1"
    signer = Signer({"k1": "secret"})
    q = signer.sign_path("/audio/f/0", int(NOW) + 60, territory="DE")
    assert q["ter"] == "DE"
    verdict = signer.verify("/audio/f/0", q["exp"], q["kid"], q["sig"], now=NOW, territory="DE")
    assert verdict.ok and verdict.territory == "DE"
    for other in ("FR", None):  # edited or removed territory: the signature no longer matches
        assert signer.verify("/audio/f/0", q["exp"], q["kid"], q["sig"], now=NOW, territory=other).reason == \
            signing.MISMATCH
    assert signer.verify("/audio/f/0", q["exp"], q["kid"], q["sig"], now=NOW, territory="de").reason == \
        signing.BAD_TERRITORY
    legacy = signer.sign_path("/audio/f/0", int(NOW) + 60)
    assert "ter" not in legacy
    ok = signer.verify("/audio/f/0", legacy["exp"], legacy["kid"], legacy["sig"], now=NOW)
    assert ok.ok and ok.territory is None
    assert not signer.verify("/audio/f/0", legacy["exp"], legacy["kid"], legacy["sig"], now=NOW, territory="DE").ok
    url = signer.sign_segment_url("http://cdn", "f", 0, now=NOW, territory="US")
    assert parse_qs(urlsplit(url).query)["ter"] == ["US"]
    with pytest.raises(ValueError):
        signer.sign_path("/audio/f/0", int(NOW) + 60, territory="Germany")


# -- the CDN's takedown view ---------------------------------------------------------------------------


def _view(events: list[dict], view: cdn.TakedownView | None = None) -> cdn.TakedownView:
    view = view or cdn.TakedownView()
    for spec in views.VIEWS:
        if spec.name in ("catalog", "rights"):
            published, _ = views.apply_batch(spec, {}, [(None, e) for e in events])
            for key, (_, doc) in published.items():
                view.apply(spec.name, key, doc)
    return view


def test_takedown_view_maps_files_to_logical_tracks_and_judges_by_territory() -> None:
    events = [track("x1", "Song", "I1"), track("x2", "Song", "I1", at=T0 + 5),  # x2 is an alias of x1
              rendition("x1", "a" * 32, 96, -14, -1), rendition("x2", "b" * 32, 160, -14, -1),
              rights("x1", "DE"), rights("x1", "US")]
    purged: list[set[str]] = []
    view = _view(events, cdn.TakedownView(purged.append))
    now = T0 + 10_000
    assert view.refusal("a" * 32, "DE", now) is None and view.refusal("a" * 32, None, now) is None
    assert purged == []
    takedown = ev("track.taken_down", at=T0 + 1000, track_id="x2", territories=["DE"], reason="r")
    _view([*events, takedown], view)  # the alias's takedown covers the logical track
    assert purged and purged[-1] == {"a" * 32, "b" * 32}
    for f in ("a" * 32, "b" * 32):
        assert "taken down in DE" in view.refusal(f, "DE", now)
        assert view.refusal(f, "US", now) is None
        assert "names no territory" in view.refusal(f, None, now)
    assert view.refusal(f, "DE", T0 + 999) is None  # judged at the request's time
    assert view.refusal("c" * 32, "DE", now) is None  # a file no track of the view has


def test_edge_cache_purge_drops_matching_entries_only() -> None:
    cache = EdgeCache(1000)
    for k in range(3):
        cache.put(("a", k), b"x", 10)
        cache.put(("b", k), b"y", 10)
    assert cache.purge(lambda key: key[0] == "a") == 3
    assert len(cache) == 3 and cache.size_bytes == 30 and cache.purged == 3 and ("b", 0) in cache


def test_cdn_refuses_a_taken_down_territory_purges_and_serves_the_others(tmp_path: Path) -> None:
    store = AudioStore.from_data_dir(tmp_path)
    seg = b"s" * 20_000
    file_id = store.put_rendition([seg, seg + b"!"], {"codec": "aac", "container": "adts", "ext": "aac",
                                                      "content_type": "audio/aac"})["file_id"]
    events = [track("t9", "Nine", "I9"), rendition("t9", file_id, 96, -14, -1, count=2),
              rights("t9", "DE"), rights("t9", "US")]
    view = _view(events)
    signer = Signer({"k1": "secret"})
    now = time.time()
    app = cdn.build_app(signer=signer, data_dir=tmp_path, cache_bytes=1 << 20, takedowns=view)
    state = app[cdn.CDN_KEY]

    def target(k: int, territory: str | None) -> str:
        parts = urlsplit(signer.sign_segment_url("http://cdn", file_id, k, now=now, territory=territory))
        return f"{parts.path}?{parts.query}"

    async def scenario():
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            for k in range(2):
                for territory in ("DE", "US", None):
                    assert (await client.get(target(k, territory))).status == 200
            assert len(state.cache) == 2
            takedown = ev("track.taken_down", at=int(now * 1000) - 1000, track_id="t9", territories=["DE"],
                          reason="court order")
            await asyncio.to_thread(_view, [*events, takedown], view)  # as the feed thread does
            for _ in range(100):
                if not len(state.cache):
                    break
                await asyncio.sleep(0.01)
            assert len(state.cache) == 0 and state.cache.purged == 2
            resp = await client.get(target(0, "DE"))
            body = await resp.json()
            assert resp.status == 403 and body["error"]["reason"] == "taken_down"
            assert "taken down in DE" in body["error"]["message"]
            assert (await client.head(target(1, "DE"))).status == 403
            assert (await client.get(target(0, None))).status == 403
            resp = await client.get(target(1, "US"))
            assert resp.status == 200 and await resp.read() == seg + b"!"
            health = await (await client.get("/healthz")).json()
            assert health["takedowns"]["refused"] == 3 and health["takedowns"]["files"] == 1
        finally:
            await client.close()

    asyncio.run(scenario())
