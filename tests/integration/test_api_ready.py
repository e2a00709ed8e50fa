"""Ready means caught up: an API (re)started on a long history never answers from a half-built view.

Scenario: the view topics hold over a million records (users, rights and catalog documents, plus
player commands), written fast as pre-encoded records. The facts this test checks come last in their
partitions: the user ``u-fact`` (``view.users``) and the rights document that takes ``trk-fact`` down
in DE (``view.rights``; an earlier document of the same key still allows it). A replica that answered
while rebuilding would say "user is not registered", "track not found" or ``is_playable: true``.

An API process is started on that history (what a restart is: no local state) and polled through the
whole rebuild. We expect every ``/v1`` answer to be either 503 with ``Retry-After`` and the Spotify
error body, or the right answer (the track is not playable in DE, the user is known); at least one 503
(the rebuild is observable); ``/healthz``, ``/metrics`` and ``/openapi.json`` served meanwhile; and
once ``/healthz`` says ready, only right answers.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import orjson

from devstack.supervisor import Child, free_port
from playback import auth
from playback.ids import public_id
from schemas.codec import default_codec
from tests.support.playback_procs import (
    PLAYLOG,
    RawProducer,
    base_env,
    http,
    json_of,
    run_playlog,
    tail,
    view_docs,
    wait_until,
)

TOKEN_SECRET = "ready-test-token-secret-0123456789"
SIGNING_KEYS = "r1:ready-test-signing-key-0123456789"
T0 = 1_767_225_600_000  # 2026-01-01
TRACK, USER = "trk-fact", "u-fact"
BULK_USERS, BULK_RIGHTS, BULK_ARTISTS, BULK_PLAYER = 700_000, 250_000, 20_000, 50_000


def ev(etype: str, n: list[int] = [0], **fields) -> dict:  # noqa: B006 - a counter
    n[0] += 1
    return {"type": etype, "event_id": f"ready-{n[0]}", "occurred_at": fields.pop("at", T0), **fields}


FACT_TRACK = ev("track.ingested", track_id=TRACK, isrc="ISRCFACT", title="Fact Song", album_id="al-fact",
                artist_ids=["ar-fact"], duration_ms=200_000, genres=["pop"], explicit=False, distributor="d",
                rightsholders=[{"rightsholder_id": "rh", "share_ppm": 1_000_000}])
ALLOW_DE = ev("rights.changed", track_id=TRACK, territory="DE", allowed=True, valid_from=None, valid_to=None)
TAKEDOWN_DE = ev("track.taken_down", at=T0 + 1000, track_id=TRACK, territories=["DE"], reason="court order")
FACT_USER = [ev("user.registered", user_id=USER, country="DE", product="premium", display_name="Fact"),
             ev("device.registered", user_id=USER, device_id="d1", device_type="phone", name="Phone")]


def write_history(bootstrap: str, prefix: str) -> int:
    """Early facts, the bulk, then the deciding facts last; returns the number of records written."""
    early = view_docs([FACT_TRACK, ALLOW_DE])
    final = view_docs([FACT_TRACK, ALLOW_DE, TAKEDOWN_DE, *FACT_USER])
    p = RawProducer(bootstrap)
    p.send_doc(f"{prefix}view.catalog", f"track:{TRACK}", early[("catalog", f"track:{TRACK}")])
    p.send_doc(f"{prefix}view.rights", TRACK, early[("rights", TRACK)])
    user_doc = orjson.dumps(final[("users", USER)]).replace(USER.encode(), b"%s")
    rights_doc = orjson.dumps(early[("rights", TRACK)]).replace(TRACK.encode(), b"%s")
    artist = view_docs([ev("artist.ingested", artist_id="bulk-a", name="Bulk Artist", genres=["pop"])])
    artist_doc = orjson.dumps(artist[("catalog", "artist:bulk-a")])
    codec = default_codec()
    player = [codec.encode(ev("player.volume_set", user_id=f"pu{i}", device_id="d1", volume_percent=i % 101))
              for i in range(1000)]
    users_topic, rights_topic = f"{prefix}view.users", f"{prefix}view.rights"
    for i in range(BULK_USERS):
        uid = f"bulk-u{i}"
        p.send(users_topic, uid, user_doc % uid.encode())
        if i < BULK_RIGHTS:
            tid = f"bulk-t{i}"
            p.send(rights_topic, tid, rights_doc % tid.encode())
        if i < BULK_ARTISTS:
            aid = f"bulk-a{i}".encode()
            p.send(f"{prefix}view.catalog", b"artist:" + aid, artist_doc.replace(b"bulk-a", aid))
        if i < BULK_PLAYER:
            p.send(f"{prefix}player", f"pu{i % 1000}", player[i % 1000])
    p.send_doc(users_topic, USER, final[("users", USER)])
    p.send_doc(rights_topic, TRACK, final[("rights", TRACK)])
    p.flush()
    return p.count


def test_api_answers_503_until_caught_up_and_never_from_a_half_built_view(kafka, tmp_path: Path) -> None:
    prefix = f"ready{os.getpid()}."
    port = free_port()
    env = base_env(PLAYLOG_BOOTSTRAP_SERVERS=kafka.bootstrap, PLAYLOG_TOPIC_PREFIX=prefix,
                   PLAYLOG_DATA_DIR=str(tmp_path / "data"), PLAYLOG_API_PORT=str(port),
                   PLAYLOG_TOKEN_SECRET=TOKEN_SECRET, PLAYLOG_SIGNING_KEYS=SIGNING_KEYS, PLAYLOG_LOG_LEVEL="WARNING")
    run_playlog(env, "topics", "create")
    written = write_history(kafka.bootstrap, prefix)
    assert written >= 1_000_000

    token = auth.issue_token(USER, TOKEN_SECRET, now=time.time(), ttl=3600)
    log = tmp_path / "api.log"
    api = Child("api", [PLAYLOG, "api"], env, log).start()
    answers: list[tuple[str, int, dict, bytes]] = []
    stop = threading.Event()

    def poll(target: str) -> None:
        while not stop.is_set():
            try:
                status, headers, body = http("GET", port, target, token=token, timeout=30)
            except OSError:
                time.sleep(0.05)
                continue
            answers.append((target, status, headers, body))

    targets = (f"/v1/tracks/{TRACK}?market=DE", "/v1/views/home")
    threads = [threading.Thread(target=poll, args=(t,), daemon=True) for t in targets]
    for t in threads:
        t.start()
    try:
        def healthy() -> bool:
            assert api.alive(), f"the API exited with {api.returncode}\n{tail(log)}"
            try:
                status, _, body = http("GET", port, "/healthz")
                for ops in ("/metrics", "/openapi.json"):  # served while catching up too
                    assert http("GET", port, ops)[0] == 200, ops
            except OSError:
                return False
            return status == 200 and json_of(body)["ready"] is True

        wait_until("the API to catch up", healthy, timeout=600, every=0.5, on_timeout=lambda: tail(log))
        after = len(answers)
        wait_until("answers after ready", lambda: len(answers) >= after + 20, timeout=120)
    finally:
        stop.set()
        for t in threads:
            t.join(40)
        api.stop()

    def right(target: str, status: int, body: bytes) -> bool:
        doc = json_of(body)
        if target.startswith("/v1/tracks/"):
            return status == 200 and doc["id"] == public_id(TRACK) and doc["is_playable"] is False
        return status == 200 and doc["country"] == "DE"

    wrong, unavailable = [], 0
    for i, (target, status, headers, body) in enumerate(answers):
        if status == 503:
            doc = json_of(body)
            unavailable += 1
            if (headers.get("retry-after", "").isdigit() and doc["error"]["status"] == 503
                    and isinstance(doc["error"]["message"], str) and doc["error"]["message"]):
                continue
        elif right(target, status, body):
            continue
        wrong.append((i, target, status, headers.get("retry-after"), body[:200]))
    assert not wrong, f"{len(wrong)} wrong answers of {len(answers)}, first: {wrong[:5]}"
    assert unavailable > 0, "no 503 seen: the rebuild was not observable"
    for target in targets:  # once ready, the right answer
        last = [a for a in answers if a[0] == target][-1]
        assert right(target, last[1], last[3]), last
