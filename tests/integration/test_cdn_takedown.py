"""Takedowns reach URLs already handed out: the CDN follows the takedown view and the signed territory.

Scenario: a track with two renditions in the audio store, its catalog and rights events produced,
a real worker folding them into ``view.catalog`` / ``view.rights``, and a ``playlog cdn`` process
following those views. URLs are signed for a territory (``ter``, covered by the signature). Every
segment is fetched for DE and for US (so the edge cache holds them), then ``playlog takedown TRACK
--territories DE`` is run.

We expect, within a bounded time after the takedown event: the DE URLs (valid for another hour)
answer 403 with a reason naming the takedown, for GET and HEAD; the edge cache no longer holds the
track's segments; the same track's US URLs keep working byte for byte; a territory-less (legacy)
URL of the track is refused too (the CDN cannot tell where it is played); a URL whose territory was
edited is refused as tampered.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from urllib.parse import urlsplit

from devstack.supervisor import Child, Supervisor, free_port
from ingest.store import AudioStore
from playback.signing import Signer
from tests.support.playback_procs import PLAYLOG, base_env, http, json_of, run_playlog, tail, wait_until

KEY = ("k1", "takedown-test-signing-key-0123456789")
TRACK = "trk-td"
TAKEDOWN_BOUND_S = 60.0  # the worker folds the event, publishes the view, the CDN applies it


def _renditions(data_dir: Path) -> dict[str, list[bytes]]:
    rng = random.Random(7)
    store = AudioStore.from_data_dir(data_dir)
    out = {}
    for kbps, n in ((96, 3), (160, 2)):
        segments = [rng.randbytes(30_000 + 100 * k + kbps) for k in range(n)]
        meta = {"codec": "aac", "container": "adts", "ext": "aac", "content_type": "audio/aac",
                "bitrate_kbps": kbps, "segment_ms": 10_000}
        out[store.put_rendition(segments, meta)["file_id"]] = segments
    return out


def _events(renditions: dict[str, list[bytes]]) -> list[dict]:
    at = "2026-01-01T00:00:00Z"
    events = [{"type": "track.ingested", "event_id": "td-1", "occurred_at": at, "track_id": TRACK, "isrc": "ISRCTD",
               "title": "Takedown", "album_id": "al", "artist_ids": ["ar"], "duration_ms": 30_000,
               "genres": ["pop"], "explicit": False, "distributor": "d",
               "rightsholders": [{"rightsholder_id": "rh", "share_ppm": 1_000_000}]}]
    for i, (file_id, segments) in enumerate(renditions.items()):
        events.append({"type": "audio.encoded", "event_id": f"td-enc-{i}", "occurred_at": at, "track_id": TRACK,
                       "file_id": file_id, "codec": "aac", "container": "adts", "bitrate_kbps": 96 + 64 * i,
                       "sample_rate_hz": 44100, "segment_ms": 10_000, "segment_count": len(segments),
                       "byte_size": sum(map(len, segments)), "storage_key": f"audio/{file_id}",
                       "loudness_lufs": -14.0, "true_peak_dbtp": -1.0})
    for n, territory in enumerate(("DE", "US")):
        events.append({"type": "rights.changed", "event_id": f"td-r{n}", "occurred_at": at, "track_id": TRACK,
                       "territory": territory, "allowed": True, "valid_from": None, "valid_to": None})
    return events


def test_takedown_refuses_urls_already_handed_out_in_that_territory_only(kafka, tmp_path: Path) -> None:
    data = tmp_path / "data"
    renditions = _renditions(data)
    cdn_port = free_port()
    env = base_env(PLAYLOG_BOOTSTRAP_SERVERS=kafka.bootstrap, PLAYLOG_TOPIC_PREFIX=f"td{os.getpid()}.",
                   PLAYLOG_DATA_DIR=str(data), PLAYLOG_CDN_PORT=str(cdn_port), PLAYLOG_LOG_LEVEL="INFO",
                   PLAYLOG_SIGNING_KEYS=f"{KEY[0]}:{KEY[1]}", PLAYLOG_TOKEN_SECRET="takedown-test-token-secret-01")
    run_playlog(env, "topics", "create")
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in _events(renditions)))
    run_playlog(env, "produce", str(events))

    procs = Supervisor()
    cdn_log = tmp_path / "cdn.log"
    try:
        procs.add(Child("worker", [PLAYLOG, "worker", "--web-port", str(free_port())], env,
                        tmp_path / "worker.log").start())
        cdn = procs.add(Child("cdn", [PLAYLOG, "cdn"], env, cdn_log,
                              health_url=f"http://127.0.0.1:{cdn_port}/healthz").start())
        cdn.wait_healthy(60)

        def logs() -> str:
            return f"--- cdn\n{tail(cdn_log)}\n--- worker\n{tail(tmp_path / 'worker.log')}"

        def health() -> dict:
            for child in procs.dead():
                raise AssertionError(f"{child.name} exited with {child.returncode}\n{logs()}")
            return json_of(http("GET", cdn_port, "/healthz")[2])

        # the CDN's takedown view is caught up and maps every rendition of the track
        wait_until("the CDN to know the track's renditions",
                   lambda: (h := health()["takedowns"])["ready"] and h["files"] >= len(renditions),
                   timeout=240, every=0.5, on_timeout=logs)

        signer = Signer(dict([KEY]))
        now = time.time()

        def url(file_id: str, k: int, territory: str | None) -> str:
            full = signer.sign_segment_url("http://cdn", file_id, k, now=now, ttl=3600, territory=territory)
            parts = urlsplit(full)
            return f"{parts.path}?{parts.query}"

        segments = [(f, k, seg) for f, segs in renditions.items() for k, seg in enumerate(segs)]
        for f, k, seg in segments:
            for territory in ("DE", "US"):
                status, _, body = http("GET", cdn_port, url(f, k, territory))
                assert (status, body) == (200, seg), (f, k, territory, status, body[:200])
        assert health()["cache_entries"] == len(segments)
        edited = url(segments[0][0], 0, "US").replace("ter=US", "ter=FR")
        assert http("GET", cdn_port, edited)[0] == 403  # the territory is signed

        run_playlog(env, "takedown", TRACK, "--territories", "DE", "--reason", "court order")

        def refused_in_de() -> bool:
            return all(http("GET", cdn_port, url(f, k, "DE"))[0] == 403 for f, k, _ in segments)

        wait_until("the DE URLs to be refused", refused_in_de, timeout=TAKEDOWN_BOUND_S, on_timeout=logs)
        for f, k, _ in segments:
            status, headers, body = http("GET", cdn_port, url(f, k, "DE"))
            error = json_of(body)["error"]
            assert status == 403 and error["status"] == 403, (status, body)
            assert "taken down" in error["message"] and "DE" in error["message"], error
            assert error["reason"] == "taken_down", error
            assert headers["cache-control"] == "no-store"
            assert http("HEAD", cdn_port, url(f, k, "DE"))[0] == 403
        # the edge cache was purged of the track's segments (nothing else was cached)
        wait_until("the edge cache to drop the track", lambda: health()["cache_entries"] == 0, timeout=30)
        assert health()["takedowns"]["purged"] >= len(segments)
        # a legacy URL (no territory) of a track taken down somewhere is refused: where it plays is unknown
        assert http("GET", cdn_port, url(segments[0][0], 0, None))[0] == 403
        # the same track for another territory keeps working
        for f, k, seg in segments:
            status, _, body = http("GET", cdn_port, url(f, k, "US"))
            assert (status, body) == (200, seg), (f, k, status, body[:200])
    finally:
        procs.stop()
