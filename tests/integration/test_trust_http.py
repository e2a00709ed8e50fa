"""The trust boundary over real HTTP against the real stack (broker, worker, API, CDN as processes).

Scenario: a catalog with one 35-second track with real audio, allowed in DE and blocked in the US; a
DE premium listener (u-de) and a DE free one (u-free); pools for the current month. We expect a
legitimate client play (manifest -> play.started / progress / completed with the manifest's
``play_id``) to become a stream in the worker's live statement; then the forged cases of the trust
issue (u-free's completion with 200,000 ms on u-de's 10-second play, another user's play id, a play
id the server never issued, US/premium for a DE/free user, occurred_at in 1970 or 2099, a replayed
event id) to get 400 each with a reason; and after a second legitimate play (u-free's) has reached
the statement, the statement to hold exactly the two legitimate streams.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Iterator

import pytest

from core.timefmt import format_ts, parse_ts, period_of
from devstack.supervisor import Child
from processors import grants
from tests.integration.test_api_http import (
    AUDIO_TRACK,
    K1,
    K2,
    PLAYLOG,
    TOKEN_SECRET,
    USERS,
    Stack,
    _free_port,
    _run,
)


@pytest.fixture(scope="module")
def stack(kafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, int]]:
    import os

    root = tmp_path_factory.mktemp("trusthttp")
    env = dict(os.environ)
    env.update(kafka.env(root / "data", f"trust{os.getpid()}."))
    api_port, cdn_port, worker_port = _free_port(), _free_port(), _free_port()
    env.update(
        PLAYLOG_API_PORT=str(api_port), PLAYLOG_CDN_PORT=str(cdn_port),
        PLAYLOG_CDN_BASE_URL=f"http://127.0.0.1:{cdn_port}", PLAYLOG_TOKEN_SECRET=TOKEN_SECRET,
        PLAYLOG_SIGNING_KEYS=f"{K1[0]}:{K1[1]}", PLAYLOG_LOG_LEVEL="WARNING",
    )
    s = Stack(env, root / "data", api_port, cdn_port)
    _run(env, "topics", "create")
    _run(env, "catalog", "generate", "--tracks", "5", "--audio-tracks", "1", "--audio-seconds", "35",
         "--no-progress", "--jobs", "1")
    period = period_of(int(time.time() * 1000))
    setup = [dict(u) for u in USERS] + [
        {"type": "royalty.pool_declared", "period": period, "country": "DE", "product": p, "amount_micros": 9_000_000,
         "currency": "EUR"} for p in ("premium", "free")]
    lines = root / "setup.jsonl"
    lines.write_text("".join(json.dumps({**e, "event_id": f"setup-{i}", "occurred_at": "2026-01-01T00:00:00Z"}) + "\n"
                             for i, e in enumerate(setup)))
    _run(env, "produce", str(lines))
    _run(env, "rights", "set", AUDIO_TRACK, "--territories", "DE", "--allow")
    _run(env, "rights", "set", AUDIO_TRACK, "--territories", "US", "--block")
    cdn_env = {**env, "PLAYLOG_SIGNING_KEYS": f"{K2[0]}:{K2[1]},{K1[0]}:{K1[1]}"}
    for name, args, penv in (("worker", ["worker", "--web-port", str(worker_port)], env), ("cdn", ["cdn"], cdn_env),
                             ("api", ["api"], env)):
        s.procs.add(Child(name, [PLAYLOG, *args], penv, root / f"{name}.log").start())
    try:
        s.wait_audio_playable("u-free")
        yield s, worker_port
    finally:
        s.procs.stop()


def statement(worker_port: int, period: str) -> list[list[str]] | None:
    """The worker's live statement rows (None while it does not hold the view yet)."""
    conn = http.client.HTTPConnection("127.0.0.1", worker_port, timeout=10)
    try:
        conn.request("GET", f"/royalties/{period}")
        resp = conn.getresponse()
        body = resp.read().decode()
    except OSError:
        return None
    finally:
        conn.close()
    if resp.status != 200:
        return None
    return [line.split(",") for line in body.splitlines()[1:]]


def streams_by_product(rows: list[list[str]]) -> dict[str, int]:
    """Streams of the audio track per product (one rightsholder's lines: every stream has them all)."""
    out: dict[str, int] = {}
    first_rh = min((r[3] for r in rows if r[4] == AUDIO_TRACK), default=None)
    for _period, _country, product, rh, track, streams, _amount in rows:
        if track == AUDIO_TRACK and rh == first_rh:
            out[product] = out.get(product, 0) + int(streams)
    return out


class Listener:
    def __init__(self, stack: Stack, user: str):
        self.stack, self.user, self.token = stack, user, stack.token(user)

    def manifest_play_id(self) -> str:
        status, body = self.stack.api("GET", f"/v1/playback/{AUDIO_TRACK}/manifest", self.token)
        assert status == 200 and body["rungs"], body
        return body["play_id"]

    def event(self, kind: str, play_id: str, at_ms: int, ms: int = 0, **fields: object) -> dict:
        e: dict = {"type": f"play.{kind}", "event_id": f"{self.user}-{uuid.uuid4().hex}",
                   "occurred_at": format_ts(at_ms), "play_id": play_id, "user_id": self.user, "track_id": AUDIO_TRACK}
        if kind == "started":
            e.update(device_id="web", context_uri=None, offline=False)
        else:
            e["ms_played"] = ms
            if kind == "progress":
                e["context_uri"] = None
        return {**e, **fields}

    def post(self, *events: dict) -> tuple[int, dict]:
        return self.stack.api("POST", "/v1/events", self.token, {"events": list(events)})

    def play(self, ms: int) -> tuple[str, list[dict]]:
        pid = self.manifest_play_id()
        t = int(time.time() * 1000)
        events = [self.event("started", pid, t), self.event("progress", pid, t + 1, ms // 2),
                  self.event("completed", pid, t + 2, ms)]
        status, body = self.post(*events)
        assert (status, body) == (202, {"accepted": 3}), body
        return pid, events


def test_a_legit_client_play_counts_and_forged_ones_are_refused(stack: tuple[Stack, int]) -> None:
    s, worker_port = stack
    period = period_of(int(time.time() * 1000))
    de, free = Listener(s, "u-de"), Listener(s, "u-free")

    # a legitimate play: manifest -> started / progress / completed with the manifest's play_id
    _, legit_events = de.play(35_000)
    rows = s.wait_for("the live statement to show the legit stream",
                      lambda: (r := statement(worker_port, period)) and streams_by_product(r) == {"premium": 1} and r,
                      timeout=120)
    assert all(r[1] == "DE" for r in rows)

    # u-de's 10-second play (not a stream), then the forged events
    short_pid, _ = de.play(10_000)
    now = int(time.time() * 1000)
    free_pid = free.manifest_play_id()
    forged = {
        "another user": (free, free.event("completed", short_pid, now, 200_000)),  # the reproduced exploit
        "another user ": (de, de.event("completed", free_pid, now, 200_000)),
        "not a server-issued play": (de, de.event("completed", "p-" + uuid.uuid4().hex, now, 200_000)),
        "not a server-issued play ": (de, de.event("completed", short_pid[:-2] + "AA", now, 200_000)),
        "country": (free, free.event("completed", free_pid, now, 200_000, country="US")),
        "product": (free, free.event("completed", free_pid, now, 200_000, product="premium")),
        "before the play was issued": (de, de.event("completed", short_pid, 0, 200_000)),  # 1970
        "after the event was received": (de, de.event("completed", short_pid, grants_2099(), 200_000)),
        "already": (de, {**legit_events[-1], "ms_played": 200_000}),  # a replayed event id
    }
    for expect, (who, e) in forged.items():
        status, body = who.post(e)
        assert status == 400, (expect, body)
        assert body["accepted"] == 0 and expect.strip() in body["rejected"][0]["reason"], (expect, body)
    assert streams_by_product(statement(worker_port, period) or []) == {"premium": 1}

    # a second legitimate play (u-free's, on its own grant) reaches the statement: nothing else did
    free.play(31_000)
    s.wait_for("the second legit stream", lambda: streams_by_product(statement(worker_port, period) or [])
               == {"premium": 1, "free": 1}, timeout=120)
    time.sleep(6)  # a publication interval of the worker later: still exactly the two legitimate streams
    assert streams_by_product(statement(worker_port, period) or []) == {"premium": 1, "free": 1}
    assert grants.parse_grant(free_pid).user_id == "u-free"


def grants_2099() -> int:
    return parse_ts("2099-01-01T00:00:00Z")


def test_the_demo_transport_uses_the_manifest_play_id(stack: tuple[Stack, int]) -> None:
    """demo/clients.py's ApiClient reports plays under the manifest's play_id, and the API takes them."""
    import asyncio

    import aiohttp

    from core.settings import load
    from demo.clients import ApiClient
    from demo.model import Listener as SimListener
    from demo.model import Stats, TrackInfo
    from demo.simulator import Clock

    s, _ = stack
    settings = load({**s.env})
    track = TrackInfo(AUDIO_TRACK, 35_000, ("pop",))
    listener = SimListener(user_id="u-de", country="DE", product="premium", device_id="phone", device_type="phone",
                           profile="wifi", genre_weights={"pop": 1.0})

    async def main() -> tuple[int, int]:
        stats = Stats()
        async with aiohttp.ClientSession() as session:
            client = ApiClient(settings, session, f"http://127.0.0.1:{s.api_port}", stats, {AUDIO_TRACK: track})
            client.use_clock(Clock(30.0))
            manifest = await client.manifest(listener, track)
            assert manifest is not None and grants.parse_grant(manifest.play_id).user_id == "u-de"
            now = client.clock.now_ms()
            events = [{"type": "play.started", "event_id": f"demo-{uuid.uuid4().hex}", "occurred_at": now,
                       "play_id": manifest.play_id, "user_id": "u-de", "track_id": AUDIO_TRACK, "device_id": "phone",
                       "context_uri": None, "country": "DE", "product": "premium", "offline": False}]
            await client.send(listener, events)
        return stats.events, stats.errors

    assert asyncio.run(main()) == (1, 0)
