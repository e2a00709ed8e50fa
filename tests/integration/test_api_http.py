"""The playback API and the CDN as real processes, over real HTTP, fed by a real worker and broker.

Scenario: a synthetic catalog of 20 tracks (the first with a real 12 s master encoded through the
ladder) is produced with ``playlog catalog generate``; users and rights with ``playlog produce`` /
``playlog rights set``; a ``playlog worker`` materializes the views; ``playlog api`` follows them
and ``playlog cdn`` serves the store. The CDN has been rotated: it holds a new key ``k2`` (first)
and the old ``k1``, while the API still signs with ``k1``. We expect token -> search -> track ->
play -> player state -> manifest -> every segment of every rung fetched (full and by Range)
byte-identical to the stored rendition; tampered / expired / other-path / unknown-kid variants of
API-issued URLs 403; a blocked country 403 on play and manifest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from devstack.supervisor import Child, Supervisor
from ingest.store import AudioStore
from playback.signing import Signer
from tests.support.playback_procs import http

PLAYLOG = str(Path(sys.executable).parent / "playlog")
K1 = ("k1", "old-key-still-valid-0123456789")
K2 = ("k2", "new-key-now-at-the-cdn-012345")
RETIRED = ("k0", "retired-key-not-at-the-cdn-01")
AUDIO_TRACK = "trk-0-0000000"
AUDIO_TRACK_ID = "0z9yyn3xC9P83iEdfKOe"  # its public id (playback/ids.py: base62 of b"\x01" + the id)
TOKEN_SECRET = "api-http-test-token-secret"


def _free_port() -> int:
    from devstack.kafka import free_port

    return free_port()


@dataclass
class Stack:
    env: dict[str, str]
    data_dir: Path
    api_port: int
    cdn_port: int
    procs: Supervisor = field(default_factory=Supervisor)

    def request(self, method: str, target: str, *, port: int | None = None, token: str | None = None,
                body: object = None, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
        return http(method, port or self.api_port, target, token=token, body=body, headers=headers)

    def api(self, method: str, target: str, token: str | None = None, body: object = None) -> tuple[int, object]:
        status, headers, raw = self.request(method, target, token=token, body=body)
        data = json.loads(raw) if raw and headers.get("content-type", "").startswith("application/json") else None
        return status, data

    def cdn(self, url: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
        parts = urlsplit(url)
        return self.request("GET", f"{parts.path}?{parts.query}", port=self.cdn_port, headers=headers)

    def token(self, user: str) -> str:
        out = subprocess.run([PLAYLOG, "token", user], env=self.env, capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def wait_audio_playable(self, user: str, timeout: float = 180.0) -> None:
        """Until the catalog's audio track is playable for ``user`` through the API (views folded)."""
        tok = self.token(user)

        def ready() -> bool:
            try:
                status, body = self.api("GET", f"/v1/tracks/{AUDIO_TRACK}", tok)
            except OSError:
                return False
            return status == 200 and bool(body.get("has_audio")) and body.get("is_playable") is True

        self.wait_for("the audio track to be playable through the API", ready, timeout=timeout)

    def wait_for(self, what: str, check, timeout: float = 120.0) -> object:
        deadline = time.monotonic() + timeout
        while True:
            for p in self.procs.dead():
                raise AssertionError(f"{p.name} died (exit code {p.returncode})\n{self.logs()}")
            result = check()
            if result:
                return result
            assert time.monotonic() < deadline, f"timed out waiting for {what}\n{self.logs()}"
            time.sleep(0.25)

    def logs(self) -> str:
        out = []
        for name in ("worker", "api", "cdn"):
            path = self.data_dir.parent / f"{name}.log"
            if path.exists():
                out.append(f"--- {name}.log (tail)\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(out)


def _run(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    proc = subprocess.run([PLAYLOG, *args], env=env, input=stdin, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"playlog {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"


USERS = [
    {"type": "user.registered", "user_id": "u-de", "country": "DE", "product": "premium", "display_name": "De"},
    {"type": "device.registered", "user_id": "u-de", "device_id": "phone", "device_type": "phone", "name": "P"},
    {"type": "device.registered", "user_id": "u-de", "device_id": "speaker", "device_type": "speaker", "name": "S"},
    {"type": "user.registered", "user_id": "u-free", "country": "DE", "product": "free", "display_name": "Fr"},
    {"type": "device.registered", "user_id": "u-free", "device_id": "web", "device_type": "web", "name": "W"},
    {"type": "user.registered", "user_id": "u-us", "country": "US", "product": "premium", "display_name": "Us"},
    {"type": "device.registered", "user_id": "u-us", "device_id": "web", "device_type": "web", "name": "W"},
]


def start_stack(kafka, root: Path, *, worker: bool = True) -> Stack:
    """Topics, catalog, users, rights, then worker + CDN + API processes (the caller stops them)."""
    data = root / "data"
    env = dict(os.environ)
    env.update(kafka.env(data, f"api{os.getpid()}x{root.name}."))
    api_port, cdn_port = _free_port(), _free_port()
    env.update(
        PLAYLOG_API_PORT=str(api_port), PLAYLOG_CDN_PORT=str(cdn_port),
        PLAYLOG_CDN_BASE_URL=f"http://127.0.0.1:{cdn_port}", PLAYLOG_TOKEN_SECRET=TOKEN_SECRET,
        PLAYLOG_SIGNING_KEYS=f"{K1[0]}:{K1[1]}", PLAYLOG_LOG_LEVEL="WARNING",
    )
    stack = Stack(env, data, api_port, cdn_port)
    _run(env, "topics", "create")
    _run(env, "catalog", "generate", "--tracks", "20", "--audio-tracks", "1", "--audio-seconds", "12",
         "--no-progress", "--jobs", "1")
    users = root / "users.jsonl"
    users.write_text("".join(
        json.dumps({**u, "event_id": f"usr-{i}", "occurred_at": "2026-01-01T00:00:00Z"}) + "\n"
        for i, u in enumerate(USERS)))
    _run(env, "produce", str(users))
    _run(env, "rights", "set", AUDIO_TRACK, "--territories", "DE", "--allow")
    _run(env, "rights", "set", AUDIO_TRACK, "--territories", "US", "--block")
    cdn_env = {**env, "PLAYLOG_SIGNING_KEYS": f"{K2[0]}:{K2[1]},{K1[0]}:{K1[1]}"}
    commands = [("cdn", ["cdn"], cdn_env), ("api", ["api"], env)]
    if worker:
        commands.insert(0, ("worker", ["worker", "--web-port", str(_free_port())], env))
    for name, args, penv in commands:
        stack.procs.add(Child(name, [PLAYLOG, *args], penv, root / f"{name}.log").start())
    return stack


def stop_stack(stack: Stack) -> None:
    stack.procs.stop()


@pytest.fixture(scope="module")
def stack(kafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(kafka, tmp_path_factory.mktemp("apihttp"))
    try:
        s.wait_audio_playable("u-de")
        yield s
    finally:
        stop_stack(s)


# ---------------------------------------------------------------------------------------------------


def test_token_search_track_play_player_manifest_and_every_segment_from_the_cdn(stack: Stack) -> None:
    tok = stack.token("u-de")
    status, track = stack.api("GET", f"/v1/tracks/{AUDIO_TRACK}?market=DE", tok)
    assert status == 200 and track["is_playable"] is True and track["album"]["id"]

    # search by the title with a typo in its longest word (when it is long enough to allow one)
    words = track["name"].split()
    longest = max(words, key=len)
    typo = longest[:-1] if len(longest) >= 4 else longest
    query = " ".join(typo if w == longest else w for w in words)
    status, found = stack.api("GET", "/v1/search?" + urlencode({"q": query, "type": "track", "limit": 50}), tok)
    assert status == 200
    assert AUDIO_TRACK_ID in [t["id"] for t in found["tracks"]["items"]]

    status, _ = stack.api("PUT", "/v1/me/player/play?device_id=phone", tok,
                          {"uris": [f"spotify:track:{AUDIO_TRACK}"], "position_ms": 1000})
    assert status == 204
    status, player = stack.api("GET", "/v1/me/player", tok)  # read-your-writes: at once
    assert status == 200 and player["item"]["id"] == AUDIO_TRACK_ID and player["is_playing"] is True
    assert player["device"]["id"] == "phone" and player["progress_ms"] >= 1000

    status, manifest = stack.api("GET", f"/v1/playback/{AUDIO_TRACK}/manifest", tok)
    assert status == 200 and manifest["expires_at"] > time.time()
    assert manifest["rungs"] and any(r["bitrate_kbps"] > 160 for r in manifest["rungs"])  # premium: all
    store = AudioStore.from_data_dir(stack.data_dir)
    for rung in manifest["rungs"]:
        stored = store.rendition_manifest(rung["file_id"])
        assert rung["segment_count"] == stored["segment_count"] == len(rung["segments"])
        assert rung["gain_db"] == pytest.approx(min(-14 - stored["loudness_lufs"],
                                                     max(0.0, -1 - stored["true_peak_dbtp"]))
                                                 if -14 - stored["loudness_lufs"] > 0
                                                 else -14 - stored["loudness_lufs"], abs=0.01)
        whole = b""
        for k, url in enumerate(rung["segments"]):
            assert parse_qs(urlsplit(url).query)["kid"] == [K1[0]]  # the API signs with the old key
            expected = store.segment_path(rung["file_id"], k).read_bytes()
            status, headers, body = stack.cdn(url)
            assert status == 200 and body == expected
            n = len(expected)
            lo, hi = n // 3, n // 3 + n // 4
            status, headers, body = stack.cdn(url, {"Range": f"bytes={lo}-{hi}"})
            assert status == 206 and headers["content-range"] == f"bytes {lo}-{hi}/{n}"
            assert body == expected[lo:hi + 1]
            whole += expected
        assert whole == store.read_all(rung["file_id"])

    # the player confirms through the worker and the view topic: the pending overlay drains
    status, player = stack.api("GET", "/v1/me/player", tok)
    assert player["item"]["id"] == AUDIO_TRACK_ID


def test_free_tier_gets_rungs_up_to_160_kbps(stack: Stack) -> None:
    status, manifest = stack.api("GET", f"/v1/playback/{AUDIO_TRACK}/manifest", stack.token("u-free"))
    assert status == 200 and manifest["rungs"]
    assert all(r["bitrate_kbps"] <= 160 for r in manifest["rungs"])


def test_blocked_country_gets_403_with_the_reason(stack: Stack) -> None:
    tok = stack.token("u-us")
    status, body = stack.api("PUT", "/v1/me/player/play", tok, {"uris": [f"spotify:track:{AUDIO_TRACK}"]})
    assert status == 403 and "not licensed in US" in body["error"]["message"]
    status, body = stack.api("GET", f"/v1/playback/{AUDIO_TRACK}/manifest", tok)
    assert status == 403 and body["error"]["status"] == 403
    status, body = stack.api("GET", "/v1/me/player", tok)
    assert status == 204  # nothing was produced for the refused play


def test_api_issued_urls_refused_when_tampered_expired_moved_or_unknown_kid(stack: Stack) -> None:
    status, manifest = stack.api("GET", f"/v1/playback/{AUDIO_TRACK}/manifest", stack.token("u-de"))
    rung = manifest["rungs"][0]
    url = rung["segments"][0]
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert stack.cdn(url)[0] == 200

    def variant(path: str = parts.path, **changes: str) -> str:
        return f"http://cdn{path}?{urlencode({**q, **changes})}"

    sig = q["sig"]
    tampered = variant(sig=("A" if sig[0] != "A" else "B") + sig[1:])
    later = variant(exp=str(int(q["exp"]) + 3600))  # extending the expiry breaks the signature
    other_path = variant(path=parts.path.rsplit("/", 1)[0] + "/1") if rung["segment_count"] > 1 else None
    other_file = variant(path=f"/audio/{manifest['rungs'][-1]['file_id']}/0")
    unknown_kid = variant(kid="nope")
    retired = Signer(dict([RETIRED])).sign_segment_url("http://cdn", rung["file_id"], 0, now=time.time())
    expired = Signer(dict([K1])).sign_segment_url("http://cdn", rung["file_id"], 0, now=time.time() - 7200, ttl=60)
    for bad in (tampered, later, other_path, other_file, unknown_kid, retired, expired):
        if bad is None or bad == url:
            continue
        status, _, body = stack.cdn(bad)
        assert status == 403, bad
        assert json.loads(body)["error"]["status"] == 403
    # after the rotation, a URL signed with the new key works too
    fresh = Signer(dict([K2])).sign_segment_url("http://cdn", rung["file_id"], 0, now=time.time())
    assert stack.cdn(fresh)[0] == 200


def test_events_and_playlists_round_trip_through_the_views(stack: Stack) -> None:
    tok = stack.token("u-de")
    play_id = stack.api("GET", f"/v1/playback/{AUDIO_TRACK}/manifest", tok)[1]["play_id"]  # a play the server issued
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    play = {"type": "play.progress", "event_id": "cli-1", "occurred_at": now, "play_id": play_id,
            "user_id": "u-de", "track_id": AUDIO_TRACK, "ms_played": 31000, "country": "DE", "product": "premium",
            "context_uri": None}
    status, body = stack.api("POST", "/v1/events", tok, {"events": [play, {**play, "ms_played": -1}]})
    assert status == 400 and body["accepted"] == 1 and body["rejected"][0]["index"] == 1
    status, pl = stack.api("POST", "/v1/users/u-de/playlists", tok, {"name": "Road"})
    assert status == 201
    status, snap = stack.api("POST", f"/v1/playlists/{pl['id']}/tracks", tok,
                             {"uris": [f"spotify:track:{AUDIO_TRACK}", "spotify:track:trk-0-0000001"]})
    assert status == 201

    def materialized() -> bool:  # the worker's view document arrives with the same snapshot id
        status, body = stack.api("GET", "/healthz")
        got = stack.api("GET", f"/v1/playlists/{pl['id']}", tok)[1]
        return got["snapshot_id"] == snap["snapshot_id"] and body["playlists"] >= 1

    stack.wait_for("the playlist view", materialized, timeout=60)
    status, body = stack.api("POST", "/v1/users/u-free/playlists", tok, {"name": "Not mine"})
    assert status == 403


def test_openapi_and_metrics_are_served(stack: Stack) -> None:
    status, spec = stack.api("GET", "/openapi.json")
    assert status == 200 and "/v1/playback/{track_id}/manifest" in spec["paths"]
    status, headers, body = stack.request("GET", "/metrics")
    assert status == 200 and b'route="/v1/playback/{track_id}/manifest"' in body
