"""CDN throughput benchmark: loopback clients fetching signed segment URLs with ``Range`` requests.

:func:`run_cdn_bench` (what ``playlog bench cdn`` calls) either targets a running CDN (``base_url``,
with the signing key ring it uses) or, by default, builds a synthetic audio store in a temporary
directory, starts ``playlog cdn`` on a free port as a subprocess, measures, and stops it.

The client is built to cost as little CPU as possible, since it shares the machine with the
server: a few threads, each with one keep-alive connection and blocking sockets, reading bodies
with ``recv_into`` into one preallocated buffer (the kernel copies, Python never allocates per
chunk). Every response's status and ``Content-Range``/length are checked, and the first body of
each segment is compared byte for byte with the file. Bounded by ``max_requests`` and
``max_seconds``; the first ``warmup_requests`` (which fill the edge cache) are not timed.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from devstack.supervisor import Child
from ingest.store import AudioStore
from playback.signing import Signer

log = logging.getLogger(__name__)

BENCH_KEYS = {"bench1": "playlog-bench-signing-key-0123456789abcdef"}


@dataclass(frozen=True)
class CdnBenchResult:
    requests: int
    errors: int
    bytes: int
    seconds: float
    mb_per_s: float  # 10^6 bytes per second of body bytes
    requests_per_s: float
    avg_response_bytes: float
    segment_bytes: int
    segments: int
    connections: int
    server_hit_ratio: float | None
    server_cpu_seconds: float | None  # user+sys CPU of the CDN process during the timed run (if started here)
    client_cpu_seconds: float

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        ratio = "n/a" if self.server_hit_ratio is None else f"{self.server_hit_ratio:.3f}"
        return (
            f"cdn: {self.requests} Range requests in {self.seconds:.2f}s over {self.connections} connections: "
            f"{self.mb_per_s:,.0f} MB/s ({self.mb_per_s / 1000:.2f} GB/s), {self.requests_per_s:,.0f} req/s, "
            f"avg {self.avg_response_bytes / 1000:.0f} kB/response, errors {self.errors}, "
            f"edge cache hit ratio {ratio}"
            + (
                f"; server CPU {self.server_cpu_seconds:.2f}s "
                f"({self.server_cpu_seconds / max(self.bytes, 1) * 1e9:.2f} CPU-s per GB)"
                if self.server_cpu_seconds is not None
                else ""
            )
            + f"; client CPU {self.client_cpu_seconds:.2f}s"
        )


def make_store(
    data_dir: Path, *, files: int, segments_per_file: int, segment_bytes: int
) -> list[tuple[str, int]]:
    """Write synthetic renditions with the audio store's writer; returns the (file_id, index) list."""
    rng = random.Random(7)
    store = AudioStore.from_data_dir(data_dir)
    keys = []
    for _ in range(files):
        segments = [rng.randbytes(segment_bytes) for _ in range(segments_per_file)]
        meta = {
            "codec": "aac",
            "container": "adts",
            "ext": "aac",
            "content_type": "audio/aac",
            "bitrate_kbps": 320,
            "segment_ms": 10_000,
        }
        file_id = store.put_rendition(segments, meta)["file_id"]
        keys.extend((file_id, i) for i in range(segments_per_file))
    return keys


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(base_url: str, proc: subprocess.Popen | None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the CDN exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the CDN at {base_url} did not become healthy in {timeout:.0f}s")


def _cpu_seconds(pid: int) -> float | None:
    """user+sys CPU seconds of a process (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_hit_ratio(base_url: str) -> float | None:
    try:
        with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith("playlog_cdn_cache_hit_ratio "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


class _Conn:
    """One keep-alive HTTP/1.1 connection with a minimal response reader."""

    def __init__(self, host: str, port: int, bufsize: int):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray(bufsize)
        self.view = memoryview(self.buf)
        self.pending = 0  # bytes of the next response already in buf

    def request(self, raw: bytes, keep_body: bool) -> tuple[int, dict[bytes, bytes], int, bytes | None]:
        self.sock.sendall(raw)
        # read until the end of the headers
        n = self.pending
        while True:
            end = self.buf.find(b"\r\n\r\n", 0, n)
            if end >= 0:
                break
            got = self.sock.recv_into(self.view[n:])
            if got == 0:
                raise ConnectionError("server closed the connection")
            n += got
        head = bytes(self.view[:end]).split(b"\r\n")
        status = int(head[0].split(b" ", 2)[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get(b"content-length", b"0"))
        body_start = end + 4
        have = n - body_start
        body = None
        if keep_body:
            chunks = [bytes(self.view[body_start : body_start + min(have, length)])]
            remaining = length - min(have, length)
            while remaining > 0:
                got = self.sock.recv_into(self.view, min(remaining, len(self.buf)))
                if got == 0:
                    raise ConnectionError("server closed the connection")
                chunks.append(bytes(self.view[:got]))
                remaining -= got
            body = b"".join(chunks)
        else:
            remaining = length - min(have, length)
            while remaining > 0:
                got = self.sock.recv_into(self.view, min(remaining, len(self.buf)))
                if got == 0:
                    raise ConnectionError("server closed the connection")
                remaining -= got
        self.pending = 0  # one request in flight at a time: nothing follows the body
        return status, headers, length, body

    def close(self) -> None:
        self.sock.close()


def _client(
    host: str,
    port: int,
    requests: list[tuple[bytes, int, int, tuple[str, int]]],
    expected: Mapping[tuple[str, int], Path],
    verify_first: set,
    lock: threading.Lock,
    stop_at: float,
    out: list,
) -> None:
    try:
        conn = _Conn(host, port, 1 << 20)
    except OSError:
        log.exception("benchmark client cannot connect to %s:%d", host, port)
        return
    done = errors = nbytes = 0
    try:
        for raw, start, end, key in requests:
            with lock:
                verify = key in verify_first
                verify_first.discard(key)
            status, headers, length, body = conn.request(raw, keep_body=verify)
            want = f"bytes {start}-{end}/".encode()
            if (
                status != 206
                or length != end - start + 1
                or not headers.get(b"content-range", b"").startswith(want)
            ):
                errors += 1
            elif verify and body != expected[key].read_bytes()[start : end + 1]:
                errors += 1
            done += 1
            nbytes += length
            if (done & 31) == 0 and time.perf_counter() > stop_at:
                break
    except (OSError, ValueError, IndexError):
        log.exception("benchmark client failed after %d requests", done)
        return
    finally:
        conn.close()
    out.append((done, errors, nbytes))


def _plan(
    signer: Signer, host: str, keys: list, sizes: dict, count: int, rng: random.Random, now: float
) -> list[tuple[bytes, int, int, tuple[str, int]]]:
    urls = {}
    for key in keys:
        full = signer.sign_segment_url("http://x", key[0], key[1], now=now, ttl=3600)
        urls[key] = full[len("http://x") :]
    plan = []
    for _ in range(count):
        key = keys[rng.randrange(len(keys))]
        size = sizes[key]
        start = rng.randrange(0, max(1, size // 2))
        if rng.random() < 0.5:
            end = size - 1
            rng_h = f"bytes={start}-"
        else:
            end = min(size - 1, start + rng.randrange(64 * 1024, max(64 * 1024 + 1, size)))
            rng_h = f"bytes={start}-{end}"
        raw = f"GET {urls[key]} HTTP/1.1\r\nHost: {host}\r\nRange: {rng_h}\r\n\r\n".encode()
        plan.append((raw, start, end, key))
    return plan


def run_cdn_bench(
    *,
    base_url: str | None = None,
    keys: Mapping[str, str] | None = None,
    segment_keys: list[tuple[str, int]] | None = None,
    data_dir: Path | None = None,
    files: int = 8,
    segments_per_file: int = 16,
    segment_bytes: int = 400_000,
    connections: int = 4,
    max_requests: int = 20_000,
    max_seconds: float = 10.0,
    warmup_requests: int = 256,
    seed: int = 1,
) -> CdnBenchResult:
    """Measure segment bytes/s and requests/s of Range fetches against a CDN on loopback.

    With ``base_url`` None a synthetic store (``files`` x ``segments_per_file`` segments of
    ``segment_bytes``) is created and a CDN subprocess is started and stopped here. With a
    ``base_url``, pass the ``keys`` it verifies, the ``data_dir`` it serves and optionally the
    ``segment_keys`` to fetch (default: every segment found under ``data_dir/audio``).
    """
    if connections < 1 or max_requests < 1 or max_seconds <= 0:
        raise ValueError("connections, max_requests and max_seconds must be positive")
    tmp = None
    proc = None
    child = None
    try:
        if base_url is None:
            tmp = tempfile.TemporaryDirectory(prefix="playlog-cdn-bench-")
            data_dir = Path(tmp.name)
            segment_keys = make_store(
                data_dir, files=files, segments_per_file=segments_per_file, segment_bytes=segment_bytes
            )
            keys = BENCH_KEYS
            port = _free_port()
            base_url = f"http://127.0.0.1:{port}"
            env = dict(os.environ)
            env.update(
                PLAYLOG_DATA_DIR=str(data_dir),
                PLAYLOG_CDN_PORT=str(port),
                PLAYLOG_CDN_HOST="127.0.0.1",
                PLAYLOG_SIGNING_KEYS=",".join(f"{k}:{v}" for k, v in keys.items()),
                PLAYLOG_LOG_LEVEL="WARNING",
            )
            child = Child("bench-cdn", [sys.executable, "-m", "playlog", "cdn"], env, data_dir / "cdn.log").start()
            proc = child.proc
        if keys is None or data_dir is None:
            raise ValueError("with base_url, pass the CDN's signing keys and its data_dir")
        _wait_healthy(base_url, proc)
        if segment_keys is None:
            segment_keys = [
                (p.parent.name, int(p.stem))
                for p in sorted((Path(data_dir) / "audio").glob("*/*.*"))
                if p.suffix != ".json" and p.stem.isdigit()
            ]
        if not segment_keys:
            raise ValueError(f"no segments under {data_dir}/audio to fetch")
        paths = {}
        for file_id, index in segment_keys:
            found = list((Path(data_dir) / "audio" / file_id).glob(f"{index:05d}.*"))
            paths[(file_id, index)] = next(p for p in found if p.suffix != ".json")
        sizes = {k: p.stat().st_size for k, p in paths.items()}
        split = urlsplit(base_url)
        host, port = split.hostname or "127.0.0.1", split.port or 80
        signer = Signer(keys)
        rng = random.Random(seed)
        now = time.time()

        # warm-up (fills the edge cache; not timed)
        warm = _plan(signer, split.netloc, segment_keys, sizes, warmup_requests, rng, now)
        for key in segment_keys:
            size = sizes[key]
            url = signer.sign_segment_url("http://x", key[0], key[1], now=now)[len("http://x") :]
            raw = f"GET {url} HTTP/1.1\r\nHost: {split.netloc}\r\nRange: bytes=0-\r\n\r\n".encode()
            warm.append((raw, 0, size - 1, key))
        _run_clients(host, port, [warm], paths, set(), time.perf_counter() + 60)

        plan = _plan(signer, split.netloc, segment_keys, sizes, max_requests, rng, now)
        shares = [plan[i::connections] for i in range(connections)]
        cpu0 = _cpu_seconds(proc.pid) if proc is not None else None
        own0 = time.process_time()
        started = time.perf_counter()
        done, errors, nbytes = _run_clients(
            host, port, shares, paths, set(segment_keys), started + max_seconds
        )
        seconds = time.perf_counter() - started
        own = time.process_time() - own0
        cpu1 = _cpu_seconds(proc.pid) if proc is not None else None
        ratio = server_hit_ratio(base_url)
        return CdnBenchResult(
            requests=done,
            errors=errors,
            bytes=nbytes,
            seconds=seconds,
            mb_per_s=nbytes / seconds / 1e6,
            requests_per_s=done / seconds,
            avg_response_bytes=nbytes / done if done else 0.0,
            segment_bytes=int(sum(sizes.values()) / len(sizes)),
            segments=len(segment_keys),
            connections=connections,
            server_hit_ratio=ratio,
            server_cpu_seconds=None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
            client_cpu_seconds=own,
        )
    finally:
        if child is not None:
            child.stop(10)
        if tmp is not None:
            tmp.cleanup()


def _run_clients(host, port, shares, paths, verify_first, stop_at) -> tuple[int, int, int]:
    lock = threading.Lock()
    out: list = []
    threads = [
        threading.Thread(target=_client, args=(host, port, share, paths, verify_first, lock, stop_at, out))
        for share in shares
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(out) != len(threads):
        raise RuntimeError("a benchmark client failed (see the log)")
    return sum(o[0] for o in out), sum(o[1] for o in out), sum(o[2] for o in out)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(run_cdn_bench().summary())  # noqa: T201
