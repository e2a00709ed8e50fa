"""The CDN over real HTTP: a ``playlog cdn`` process started here serves a store of generated segments.

Scenario: the CDN is configured with two keys (``new`` signs, ``old`` still verifies). We expect
byte-identical full and Range fetches, 416 for unsatisfiable ranges, HEAD without a body, 403 for
tampered/expired/other-path/unknown-kid URLs, old-key URLs still valid, and a rising hit ratio.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devstack.supervisor import Child
from ingest.store import AudioStore
from playback import auth
from playback.signing import Signer

PLAYLOG = str(Path(sys.executable).parent / "playlog")
NEW = ("new", "new-secret-for-tests-0123456789")
OLD = ("old", "old-secret-for-tests-0123456789")
RETIRED = ("ancient", "retired-secret-for-tests-0123")
CACHE_BYTES = 4 * 1024 * 1024  # max cacheable object: 1 MiB


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cdn:
    port: int
    data_dir: Path
    proc: subprocess.Popen
    ids: dict[str, str]  # rendition name -> file_id (content address)
    segments: dict[tuple[str, int], bytes]  # (rendition name, index) -> bytes

    def url(self, name: str, index: int, *, keys=(NEW,), now: float | None = None, ttl: int = 300) -> str:
        """A signed path+query for segment ``index`` of rendition ``name`` (or of a raw file id)."""
        file_id = self.ids.get(name, name)
        signer = Signer(dict(keys))
        full = signer.sign_segment_url(
            "http://cdn", file_id, index, now=time.time() if now is None else now, ttl=ttl
        )
        parts = urlsplit(full)
        return f"{parts.path}?{parts.query}"

    def request(self, method: str, target: str, headers: dict[str, str] | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, target, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def metric(self, name: str) -> float:
        _, _, body = self.request("GET", "/metrics")
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{name} not in /metrics")


def _write_store(root: Path) -> dict[str, tuple[str, list[bytes]]]:
    """Three renditions written with the ingest store's writer: name -> (file_id, segments)."""
    rng = random.Random(42)
    store = AudioStore.from_data_dir(root)
    aac = {
        "codec": "aac",
        "container": "adts",
        "ext": "aac",
        "content_type": "audio/aac",
        "segment_ms": 10_000,
    }
    opus = {
        "codec": "opus",
        "container": "ogg",
        "ext": "opus",
        "content_type": "audio/ogg",
        "segment_ms": 10_000,
    }
    renditions = {
        "aac": ([rng.randbytes(50_000 + 1_000 * i) for i in range(3)], aac),
        "opus": ([rng.randbytes(20_000)], opus),
        # larger than the cache admits (1 MiB): served from disk with sendfile
        "big": ([rng.randbytes(1_500_000)], aac),
    }
    return {
        name: (store.put_rendition(segments, meta)["file_id"], segments)
        for name, (segments, meta) in renditions.items()
    }


@pytest.fixture(scope="module")
def cdn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cdn]:
    root = tmp_path_factory.mktemp("cdn")
    renditions = _write_store(root)
    ids = {name: file_id for name, (file_id, _) in renditions.items()}
    segments = {(name, k): seg for name, (_, segs) in renditions.items() for k, seg in enumerate(segs)}
    port = _free_port()
    env = dict(os.environ)
    env.update(
        PLAYLOG_DATA_DIR=str(root),
        PLAYLOG_CDN_PORT=str(port),
        PLAYLOG_CDN_HOST="127.0.0.1",
        PLAYLOG_SIGNING_KEYS=f"{NEW[0]}:{NEW[1]},{OLD[0]}:{OLD[1]}",
        PLAYLOG_CDN_CACHE_BYTES=str(CACHE_BYTES),
    )
    cdn = Child("cdn", [PLAYLOG, "cdn"], env, root / "cdn.log", health_url=f"http://127.0.0.1:{port}/healthz").start()
    handle = Cdn(port, root, cdn.proc, ids, segments)
    try:
        cdn.wait_healthy(30)
        yield handle
    finally:
        cdn.stop()


def _assert_error(status: int, headers: dict, body: bytes, expected: int) -> str:
    assert status == expected
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert error["status"] == expected and isinstance(error["message"], str) and error["message"]
    return error["message"]


def test_full_fetch_is_byte_identical_with_headers(cdn: Cdn):
    for key, data in cdn.segments.items():
        status, headers, body = cdn.request("GET", cdn.url(*key))
        assert status == 200, key
        assert body == data
        assert int(headers["content-length"]) == len(data)
        assert headers["accept-ranges"] == "bytes"
        assert headers["etag"].startswith('"') and headers["etag"].endswith('"')
        assert headers["cache-control"].startswith("public, max-age=")
    assert cdn.request("GET", cdn.url("aac", 0))[1]["content-type"] == "audio/aac"
    assert cdn.request("GET", cdn.url("opus", 0))[1]["content-type"] == "audio/ogg"


@pytest.mark.parametrize("file_id", ["aac", "big"])
@pytest.mark.parametrize(
    ("header", "expect"),
    [
        ("bytes=0-0", lambda n: (0, 0)),
        ("bytes=100-199", lambda n: (100, 199)),
        ("bytes=100-", lambda n: (100, n - 1)),
        ("bytes=-500", lambda n: (n - 500, n - 1)),
        ("bytes=-99999999", lambda n: (0, n - 1)),
        ("bytes=1000-99999999", lambda n: (1000, n - 1)),
        ("bytes=20000-40000", lambda n: (20000, 40000)),
    ],
)
def test_range_requests_are_byte_identical(cdn: Cdn, file_id: str, header: str, expect):
    data = cdn.segments[(file_id, 0)]
    start, end = expect(len(data))
    status, headers, body = cdn.request("GET", cdn.url(file_id, 0), {"Range": header})
    assert status == 206
    assert headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
    assert int(headers["content-length"]) == end - start + 1
    assert body == data[start : end + 1]


@pytest.mark.parametrize("header", ["bytes=50000-", "bytes=999999-1000000", "bytes=-0"])
def test_unsatisfiable_range_is_416(cdn: Cdn, header: str):
    size = len(cdn.segments[("aac", 0)])
    status, headers, body = cdn.request("GET", cdn.url("aac", 0), {"Range": header})
    _assert_error(status, headers, body, 416)
    assert headers["content-range"] == f"bytes */{size}"


def test_multi_range_and_invalid_range_get_the_full_object(cdn: Cdn):
    data = cdn.segments[("aac", 1)]
    for header in ("bytes=0-1,10-20", "bytes=30-10", "lines=1-2"):
        status, headers, body = cdn.request("GET", cdn.url("aac", 1), {"Range": header})
        assert (status, body) == (200, data), header
        assert "content-range" not in headers


def test_head_has_headers_and_no_body(cdn: Cdn):
    data = cdn.segments[("aac", 2)]
    target = cdn.url("aac", 2)
    status, headers, body = cdn.request("HEAD", target)
    _, get_headers, _ = cdn.request("GET", target)
    assert (status, body) == (200, b"")
    assert int(headers["content-length"]) == len(data)
    for name in ("content-type", "etag", "accept-ranges"):
        assert headers[name] == get_headers[name]
    status, headers, body = cdn.request("HEAD", target, {"Range": "bytes=10-19"})
    assert (status, body, headers["content-range"], headers["content-length"]) == (
        206,
        b"",
        f"bytes 10-19/{len(data)}",
        "10",
    )


def test_conditional_requests(cdn: Cdn):
    target = cdn.url("aac", 0)
    data = cdn.segments[("aac", 0)]
    etag = cdn.request("HEAD", target)[1]["etag"]
    status, _, body = cdn.request("GET", target, {"If-None-Match": etag})
    assert (status, body) == (304, b"")
    # If-Range with a stale validator: the Range is ignored and the whole object sent
    status, _, body = cdn.request("GET", target, {"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert (status, body) == (200, data)
    status, _, body = cdn.request("GET", target, {"Range": "bytes=0-9", "If-Range": etag})
    assert (status, body) == (206, data[:10])


def _with(target: str, **changes: str) -> str:
    path, _, query = target.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    params.update(changes)
    return path + "?" + "&".join(f"{k}={v}" for k, v in params.items() if v is not None)


def test_forbidden_urls(cdn: Cdn):
    good = cdn.url("aac", 0)
    aac = cdn.ids["aac"]
    params = dict(p.split("=", 1) for p in good.partition("?")[2].split("&"))
    sig = params["sig"]
    tampered_sig = ("A" if sig[5] != "A" else "B").join((sig[:5], sig[6:]))
    cases = {
        "tampered sig": _with(good, sig=tampered_sig),
        "tampered exp": _with(good, exp=str(int(params["exp"]) + 3600)),
        "expired": cdn.url("aac", 0, now=time.time() - 3600, ttl=60),
        "other path": good.replace(f"/audio/{aac}/0?", f"/audio/{aac}/1?"),
        "other file": good.replace(f"/audio/{aac}/0?", f"/audio/{cdn.ids['opus']}/0?"),
        "unknown kid": cdn.url("aac", 0, keys=(RETIRED,)),
        "kid swapped": _with(good, kid=OLD[0]),
        "missing sig": good.split("&sig=")[0],
        "no query": good.split("?")[0],
    }
    for name, target in cases.items():
        status, headers, body = cdn.request("GET", target)
        message = _assert_error(status, headers, body, 403)
        assert "forbidden" in message, name
        assert cdn.request("HEAD", target)[0] == 403, name
    assert "expired" in json.loads(cdn.request("GET", cases["expired"])[2])["error"]["message"]
    assert "unknown key" in json.loads(cdn.request("GET", cases["unknown kid"])[2])["error"]["message"]


def test_key_rotation_keeps_old_urls_valid(cdn: Cdn):
    data = cdn.segments[("aac", 1)]
    old_url = cdn.url("aac", 1, keys=(OLD,))
    assert "kid=old" in old_url
    status, _, body = cdn.request("GET", old_url)
    assert (status, body) == (200, data)
    new_url = cdn.url("aac", 1, keys=(NEW, OLD))
    assert "kid=new" in new_url
    assert cdn.request("GET", new_url)[0] == 200
    # an old-key URL past its expiry is refused like any other
    assert cdn.request("GET", cdn.url("aac", 1, keys=(OLD,), now=time.time() - 600, ttl=60))[0] == 403


def test_unknown_file_or_segment_is_404_only_after_the_signature(cdn: Cdn):
    for key in (("nope", 0), ("0" * 32, 0), ("aac", 3), ("aac", 999_999), ("opus", 1)):
        status, headers, body = cdn.request("GET", cdn.url(*key))
        _assert_error(status, headers, body, 404)
    unsigned = "/audio/nope/0?exp=9999999999&kid=new&sig=" + "A" * 43
    assert cdn.request("GET", unsigned)[0] == 403
    _assert_error(*cdn.request("GET", "/elsewhere"), 404)
    status, headers, body = cdn.request("POST", cdn.url("aac", 0))
    _assert_error(status, headers, body, 405)


def test_hit_ratio_rises_on_repeated_fetches(cdn: Cdn):
    target = cdn.url("aac", 2)
    cdn.request("GET", target)  # make sure it is cached
    ratio0 = cdn.metric("playlog_cdn_cache_hit_ratio")
    hits0 = cdn.metric("playlog_cdn_cache_hits_total")
    served0 = cdn.metric("playlog_cdn_bytes_served_total")
    for _ in range(20):
        assert cdn.request("GET", target, {"Range": "bytes=0-99"})[0] == 206
    assert cdn.metric("playlog_cdn_cache_hits_total") == hits0 + 20
    assert cdn.metric("playlog_cdn_cache_hit_ratio") > ratio0
    assert cdn.metric("playlog_cdn_bytes_served_total") == served0 + 2000
    assert cdn.metric("playlog_cdn_cache_bytes") <= CACHE_BYTES
    assert (
        cdn.metric("playlog_cdn_cache_entries") <= 4
    )  # the big rendition (1.5 MB > 1 MiB) is never admitted
    _, _, body = cdn.request("GET", "/metrics")
    text = body.decode()
    assert 'playlog_cdn_requests_total{status="206"}' in text
    assert "playlog_cdn_request_seconds_bucket" in text


def test_token_cli_prints_a_verifiable_token():
    env = dict(os.environ, PLAYLOG_TOKEN_SECRET="cli-test-secret")
    out = subprocess.run(
        [PLAYLOG, "token", "user-7", "--ttl", "120"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    check = auth.verify_token(out.stdout.strip(), "cli-test-secret", now=time.time())
    assert check.user_id == "user-7" and check.expires_at - time.time() <= 120
    bad = subprocess.run([PLAYLOG, "token", "user-7", "--ttl", "0"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "ttl" in bad.stderr and "Traceback" not in bad.stderr


def test_cdn_cli_reports_a_busy_port_in_one_line(cdn: Cdn):
    env = dict(os.environ, PLAYLOG_CDN_PORT=str(cdn.port), PLAYLOG_DATA_DIR=str(cdn.data_dir))
    out = subprocess.run([PLAYLOG, "cdn"], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "cannot listen" in out.stderr and "Traceback" not in out.stderr
    bad = subprocess.run(
        [PLAYLOG, "cdn"],
        env=dict(env, PLAYLOG_CDN_CACHE_BYTES="lots"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "PLAYLOG_CDN_CACHE_BYTES" in bad.stderr and "Traceback" not in bad.stderr


def test_bench_function_runs_bounded_and_checks_bytes():
    from benchmarks.cdn import run_cdn_bench

    result = run_cdn_bench(
        files=2, segments_per_file=3, segment_bytes=100_000, max_requests=200, warmup_requests=10
    )
    assert result.errors == 0
    assert result.requests == 200 and result.bytes > 0 and result.mb_per_s > 0
    assert result.server_hit_ratio is not None and result.server_hit_ratio > 0.5
