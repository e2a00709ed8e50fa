"""The recommender's story on the real broker: home -> a shelf played as a context -> the client's
``play.started`` names the shelf on the listening topic -> skips fold through the worker's taste stage
(``view.taste``) into the API's replica -> tomorrow's Daily Mix reflects them; Discover Weekly frozen per
ISO week; a takedown / region block produced to Kafka takes a track off every shelf.

Parts: one real ``playlog worker`` process for the module (folds the catalog/rights/users/player views and
runs the taste stage) on the session broker; the API in process (``PlaybackApi`` with a real
:class:`~playback.replica.Replica` following the view topics, a real
:class:`~playback.publisher.KafkaPublisher`, ``build_app`` served by aiohttp's TestServer) so the test
owns the clock (days and weeks pass). The catalog, users and planted listening history (trusted
``play.completed`` events, no ``received_at``) are produced with the real producer; the client's events
go through ``POST /v1/events`` with play grants from the manifest route. The batch job's features
(``view.similar`` / ``view.popularity``) are documents computed in the test from the planted plays (item-item
cosine by :func:`processors.recs.similarity.item_item`, the batch job's Python twin) and produced to their
view topics, instead of running ``playlog batch recs``.

The planted world is tests/unit/test_recs_routes.py's (rock fans, co-listeners, a pop crowd in DE) with
two more rock fans, ``fan2`` (Discover Weekly) and ``fan3`` (takedowns), so each test has a user of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.settings import Settings, load
from core.timefmt import format_ts
from devstack.workers import WorkerProcess
from playback import auth, pii_reader
from playback.api import PlaybackApi, build_app
from playback.ids import internal_id, public_id
from playback.publisher import KafkaPublisher
from playback.replica import Replica
from processors.recs.similarity import item_item
from processors.rules import MIN_STREAM_MS
from schemas.codec import default_codec
from tests.support.taste_fold import popularity_doc
from tests.unit.test_api_routes import call, ev, rendition
from tests.unit.test_recs_routes import DAY_S, NOW, ROCK, W23_MONDAY, planted_events, tid
from topics.admin import create_topics
from topics.kafka_io import EventProducer, iter_records

WAIT_S = 120.0
SKIPPED_ARTIST = "ra1"  # one of the fan's two planted artists (ra0, ra1): the story skips it
# the fan's two planted ra1 plays, each skipped twice (the shelves hold ra1's other tracks: the skips
# must move those, through the artist, not only the skipped tracks themselves)
SKIPS = [tid(SKIPPED_ARTIST, 0), tid(SKIPPED_ARTIST, 1)] * 2
EXTRA_FANS = ("fan2", "fan3")


@dataclass
class Clock:
    now: float = W23_MONDAY + 2 * DAY_S + 10 * 3600  # Wednesday 2026-06-03 10:00 UTC (ISO week 2026-W23)

    def __call__(self) -> float:
        return self.now

    def ms(self) -> int:
        return int(self.now * 1000)


@dataclass
class Stack:
    settings: Settings
    clock: Clock
    replica: Replica
    api: PlaybackApi
    worker: WorkerProcess
    producer: EventProducer

    def token(self, user: str) -> dict[str, str]:
        tok = auth.issue_token(user, self.settings.token_secret, now=self.clock(), ttl=3600)
        return {"Authorization": "Bearer " + tok}

    def produce(self, events: list[dict]) -> None:
        for e in events:
            self.producer.produce(e)
        self.producer.flush()

    def serve(self, scenario: Callable[[TestClient], Awaitable[Any]]) -> Any:
        async def main() -> Any:
            client = TestClient(TestServer(build_app(self.api)))
            await client.start_server()
            try:
                return await scenario(client)
            finally:
                await client.close()

        return asyncio.run(main())

    async def until(self, what: str, check: Callable[[], Any], timeout: float = WAIT_S) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            assert self.worker.returncode is None, f"the worker died\n{self.worker_log()}"
            got = check()
            if got:
                return got
            assert time.monotonic() < deadline, f"timed out waiting for {what}\n{self.worker_log()}"
            await asyncio.sleep(0.25)

    def worker_log(self) -> str:
        path = self.worker.log
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def _extra_fans() -> list[dict]:
    """fan2 and fan3: the fan's taste (rock artists ra0 and ra1 streamed, nothing else)."""
    out: list[dict] = []
    for k, u in enumerate(EXTRA_FANS):
        out.append(ev("user.registered", user_id=u, country="DE", product="premium", display_name=u))
        out.append(ev("device.registered", user_id=u, device_id="ph", device_type="phone", name="Phone"))
        for day, t in enumerate([tid("ra0", 0), tid("ra1", 0), tid("ra0", 1), tid("ra1", 1)]):
            out.append(ev("play.completed", play_id=f"x{u}{day}", user_id=u, track_id=t, ms_played=200_000,
                          country="DE", product="premium", at=int((NOW - (day + 1) * DAY_S) * 1000) - 7 - k))
    return out


def _audio() -> list[dict]:
    """One rendition per rock track, so the manifest route hands out play grants for them."""
    return [rendition(tid(a, n), hashlib.md5(tid(a, n).encode()).hexdigest(), 160, -14.0, -1.0)  # noqa: S324
            for a in ROCK for n in range(6)]


def _features(settings: Settings, plays: list[dict]) -> None:
    """What ``playlog batch recs`` publishes for these plays: view.popularity (streams >= 30 s per country)
    and view.similar (item-item cosine over each listener's streamed tracks)."""
    by_country: dict[str, dict[str, int]] = {}
    listened: dict[str, set[str]] = {}
    for e in plays:
        if e["ms_played"] < MIN_STREAM_MS:
            continue
        per = by_country.setdefault(e["track_id"], {})
        per[e["country"]] = per.get(e["country"], 0) + 1
        listened.setdefault(e["user_id"], set()).add(e["track_id"])
    p = EventProducer(settings)
    for t, per in by_country.items():
        p.produce_raw(f"{settings.topic_prefix}view.popularity", orjson.dumps(popularity_doc(t, per)), key=t)
    for t, neighbours in item_item(listened).items():
        doc = {"track_id": t, "neighbours": [list(n) for n in neighbours], "as_of": 0}
        p.produce_raw(f"{settings.topic_prefix}view.similar", orjson.dumps(doc), key=t)
    p.flush()


@pytest.fixture(scope="module")
def stack(kafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("recsstory")
    mp = pytest.MonkeyPatch()
    # the environment too: the API's process-wide readers (playback/pii_reader.py) load their settings from it
    for k, v in {**kafka.env(root / "data", f"recs{os.getpid()}."), "PLAYLOG_LOG_LEVEL": "WARNING"}.items():
        mp.setenv(k, v)
    mp.setattr(pii_reader, "_reader", None)
    try:
        yield from _start(load(), root)
    finally:
        mp.undo()


def _start(settings: Settings, root: Path) -> Iterator[Stack]:
    create_topics(settings)
    world = planted_events() + _extra_fans()
    plays = [e for e in world if e["type"].startswith("play.")]
    catalog = [e for e in world if not e["type"].startswith("play.")] + _audio()
    producer = EventProducer(settings)
    for e in catalog:
        producer.produce(e)
    producer.flush()
    _features(settings, plays)
    worker = WorkerProcess(settings, root).start()
    replica = Replica(search=False)
    replica.start(settings)
    publisher = KafkaPublisher(settings)
    clock = Clock()
    api = PlaybackApi(settings, replica, publisher, clock=clock)
    s = Stack(settings, clock, replica, api, worker, producer)
    try:
        users = {e["user_id"] for e in world if e["type"] == "user.registered"}
        tracks = {e["track_id"] for e in catalog if e["type"] == "track.ingested"}

        async def folded() -> None:  # the worker's catalog, rights and users views reached the replica
            await s.until("the catalog and users views", lambda: tracks <= set(replica.tracks)
                          and users <= set(replica.users) and all((replica.track_doc(t) or {}).get("ladder")
                                                                 for t in tracks if t[0] == "r"))
            # only now the listening history: the taste stage resolves every play's artists and genres
            s.produce(plays)
            per_user: dict[str, int] = {}
            for e in plays:
                per_user[e["user_id"]] = per_user.get(e["user_id"], 0) + 1
            await s.until("the taste stage to fold the planted history", lambda: all(
                (replica.taste_profile(u) or {}).get("signals") == 2 * n for u, n in per_user.items()))
            await s.until("the batch features", lambda: replica.neighbours("ra0t0") and replica.popular("DE"))

        asyncio.run(folded())
        yield s
    finally:
        publisher.close()
        replica.stop()
        worker.stop()
        producer.flush()


# ---------------------------------------------------------------------------------------------------


def tracks_of(shelf: dict) -> list[str]:
    return [internal_id(i["id"]) for i in shelf["items"]]


def artist_of(track_id: str) -> str:
    return track_id[:3]  # the planted ids: <artist>t<n>


async def home(c: TestClient, s: Stack, user: str) -> list[dict]:
    status, body = await call(c, "GET", "/v1/views/home?limit=50", s.token(user))
    assert status == 200, body
    return body["shelves"]


def mixes(shelves: list[dict]) -> list[dict]:
    return [sh for sh in shelves if sh["kind"] == "daily-mix"]


async def grant(c: TestClient, s: Stack, user: str, track_id: str) -> str:
    status, body = await call(c, "GET", f"/v1/playback/{public_id(track_id)}/manifest", s.token(user))
    assert status == 200, body
    return body["play_id"]


def listening(settings: Settings) -> list[dict]:
    codec = default_codec()
    return [codec.decode(r.value) for r in iter_records(settings, [settings.topic_prefix + "listening"])
            if r.value is not None]


def test_story_shelf_played_as_context_then_skips_take_the_artist_off_tomorrows_home(stack: Stack) -> None:
    s = stack
    s.clock.now = Clock().now  # Wednesday of W23

    async def scenario(c: TestClient) -> None:
        tok = s.token("fan")
        today = await home(c, s, "fan")
        kinds = {sh["kind"] for sh in today}
        assert {"discover-weekly", "daily-mix", "because-you-listened"} <= kinds, kinds
        mix = mixes(today)[0]
        assert mix["context_uri"] == "spotify:playlist:" + public_id("recs:fan:" + mix["id"])
        # today the fan's planted artists ra0 and ra1 are on the page (their tracks the fan has not played)
        before = [artist_of(t) for sh in today for t in tracks_of(sh)]
        assert before.count(SKIPPED_ARTIST) >= 2 and before.count("ra0") >= 2, before

        # play the mix as a context: the player plays its first playable track
        status, body = await call(c, "PUT", "/v1/me/player/play?device_id=ph", tok,
                                  json={"context_uri": mix["context_uri"]})
        assert status == 204, body
        status, player = await call(c, "GET", "/v1/me/player", tok)
        assert status == 200 and player["context"]["uri"] == mix["context_uri"]
        playing = internal_id(player["item"]["id"])
        assert playing == tracks_of(mix)[0]

        # the client reports play.started from that context with the server's play grant
        play_id = await grant(c, s, "fan", playing)
        started = {"type": "play.started", "event_id": "story-start", "occurred_at": format_ts(s.clock.ms()),
                   "play_id": play_id, "user_id": "fan", "track_id": playing, "device_id": "ph",
                   "context_uri": mix["context_uri"], "offline": False}
        status, body = await call(c, "POST", "/v1/events", tok, json={"events": [started]})
        assert status == 202, body
        recorded = [e for e in listening(s.settings) if e["event_id"] == "story-start"]
        assert len(recorded) == 1 and recorded[0]["type"] == "play.started" and recorded[0]["track_id"] == playing
        assert recorded[0]["context_uri"] == mix["context_uri"]
        assert internal_id(recorded[0]["context_uri"].split(":")[2]) == "recs:fan:" + mix["id"]
        assert recorded[0]["received_at"] == s.clock.ms()

        # then the fan skips ra1's tracks, each after 5 s: four skips of the artist
        signals = s.replica.taste_profile("fan")["signals"]
        skips = []
        for k, t in enumerate(SKIPS):
            s.clock.now += 60
            pid = await grant(c, s, "fan", t)
            skips.append({"type": "play.skipped", "event_id": f"story-skip{k}", "occurred_at": format_ts(s.clock.ms()),
                          "play_id": pid, "user_id": "fan", "track_id": t, "ms_played": 5_000})
        status, body = await call(c, "POST", "/v1/events", tok, json={"events": skips})
        assert status == 202, body
        profile = await s.until("the taste stage to fold the skips", lambda: (
            p if (p := s.replica.taste_profile("fan")) and p["signals"] >= signals + len(skips) else None))
        assert [h[2] for h in profile["history"] if h[3] == "skip"] == SKIPS

        # tomorrow: ra1 is on no shelf of the home. Planted, the fan had two completed ra1 plays (a stream
        # and a completion each: 2 x 1.5 of affinity, processors/taste.py, and a week older, so decayed
        # more) against four skips (4 x -1): a negative affinity, a disliked artist. ra0, the other planted
        # artist, is still on the page: the skips hit the artist, not the fan's rock taste.
        s.clock.now += DAY_S
        tomorrow = await home(c, s, "fan")
        assert mixes(tomorrow) and any(sh["kind"] == "discover-weekly" for sh in tomorrow), tomorrow
        after = [artist_of(t) for sh in tomorrow for t in tracks_of(sh)]
        assert SKIPPED_ARTIST not in after, [(sh["id"], tracks_of(sh)) for sh in tomorrow]
        assert after.count("ra0") >= 2, after

    s.serve(scenario)


def test_discover_weekly_is_the_same_all_week_and_another_the_next(stack: Stack) -> None:
    s = stack

    async def dw_at(c: TestClient, at: float) -> dict:
        s.clock.now = at
        return next(sh for sh in await home(c, s, "fan2") if sh["kind"] == "discover-weekly")

    async def scenario(c: TestClient) -> None:
        tuesday = await dw_at(c, W23_MONDAY + 1 * DAY_S + 8 * 3600)
        saturday = await dw_at(c, W23_MONDAY + 5 * DAY_S + 22 * 3600)
        next_monday = await dw_at(c, W23_MONDAY + 7 * DAY_S + 8 * 3600)
        assert tuesday["id"] == saturday["id"] == "discover-weekly:2026-W23"
        assert len(tracks_of(tuesday)) >= 10 and tracks_of(tuesday) == tracks_of(saturday)
        assert tuesday["context_uri"] == saturday["context_uri"]
        assert next_monday["id"] == "discover-weekly:2026-W24"
        assert next_monday["context_uri"] != tuesday["context_uri"]
        assert tracks_of(next_monday) != tracks_of(tuesday)
        # new to fan2 both weeks: none of its planted plays
        planted = {tid("ra0", 0), tid("ra1", 0), tid("ra0", 1), tid("ra1", 1)}
        assert not planted & (set(tracks_of(tuesday)) | set(tracks_of(next_monday)))
        # last week's shelf is still resolvable as a playlist, with the tracks it had
        pid = tuesday["context_uri"].split(":")[2]
        status, playlist = await call(c, "GET", f"/v1/playlists/{pid}", s.token("fan2"))
        assert status == 200 and playlist["name"] == "Discover Weekly"
        assert [internal_id(i["track"]["id"]) for i in playlist["tracks"]["items"]][:len(tracks_of(tuesday))] \
            == tracks_of(tuesday)

    s.serve(scenario)


def test_takedown_and_region_block_take_tracks_off_every_shelf(stack: Stack) -> None:
    s = stack
    s.clock.now = W23_MONDAY + 3 * DAY_S + 12 * 3600  # Thursday of W23

    async def surfaces(c: TestClient, seed: str) -> dict[str, set[str]]:
        tok = s.token("fan3")
        out = {sh["id"]: set(tracks_of(sh)) for sh in await home(c, s, "fan3")}
        status, radio = await call(c, "GET", f"/v1/views/radio?seed=spotify:track:{public_id(seed)}&limit=50", tok)
        assert status == 200, radio
        out["radio"] = set(tracks_of(radio))
        status, recs = await call(c, "GET", f"/v1/recommendations?seed_tracks={public_id(seed)}&limit=100", tok)
        assert status == 200, recs
        out["recommendations"] = {internal_id(t["id"]) for t in recs["tracks"]}
        return out

    async def scenario(c: TestClient) -> None:
        seed = tid("ra0", 0)  # fan3's planted play, co-listened with the rest of rock by the rockmates
        before = await surfaces(c, seed)
        on_home = set().union(*(v for k, v in before.items() if k not in ("radio", "recommendations")))
        # two tracks that are on fan3's home and on the seed's radio and recommendations
        common = sorted(on_home & before["radio"] & before["recommendations"] - {seed})
        assert len(common) >= 2, before
        down, blocked = common[0], common[1]
        at = s.clock.ms()
        s.produce([ev("track.taken_down", at=at, track_id=down, territories=["DE"], reason="DMCA notice"),
                   ev("rights.changed", at=at, track_id=blocked, territory="DE", allowed=False, valid_from=None,
                      valid_to=None)])
        await s.until("the takedown and the block in the replica", lambda: not s.replica.is_playable(
            down, "DE", s.clock.ms()) and not s.replica.is_playable(blocked, "DE", s.clock.ms()))
        after = await surfaces(c, seed)
        for name, ids in after.items():
            assert down not in ids and blocked not in ids, name
        assert after["radio"] and after["recommendations"] and any(v for k, v in after.items()
                                                                   if k not in ("radio", "recommendations"))
        # a playlist read of a home shelf does not list them either
        tok = s.token("fan3")
        for sh in await home(c, s, "fan3"):
            status, playlist = await call(c, "GET", f"/v1/playlists/{sh['context_uri'].split(':')[2]}", tok)
            assert status == 200
            ids = {internal_id(i["track"]["id"]) for i in playlist["tracks"]["items"]}
            assert down not in ids and blocked not in ids, sh["id"]

    s.serve(scenario)
