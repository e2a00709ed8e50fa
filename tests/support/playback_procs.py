"""Helpers for tests that run ``playlog api`` / ``playlog cdn`` processes against a real broker.

- :func:`http`: one request over a fresh loopback connection -> (status, lower-cased headers, body);
- :func:`view_docs`: the view documents the worker would publish for some events (the real folds,
  ``processors.views.apply_batch``), so a test can write view topics without running a worker;
- :class:`RawProducer`: pre-encoded records to full topic names, fast (no codec, no idempotence);
- :func:`read_topic`: every record of a topic, from the beginning to the end offsets seen at call time.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import orjson

PLAYLOG = str(Path(sys.executable).parent / "playlog")


def http(method: str, port: int, target: str, *, token: str | None = None, body: object = None,
         headers: dict[str, str] | None = None, timeout: float = 15.0) -> tuple[int, dict[str, str], bytes]:
    conn = HTTPConnection("127.0.0.1", port, timeout=timeout)
    hdrs = dict(headers or {})
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    try:
        conn.request(method, target, body=payload, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def json_of(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def run_playlog(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([PLAYLOG, *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"playlog {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def wait_until(what: str, check: Callable[[], Any], timeout: float, *, every: float = 0.2,
               on_timeout: Callable[[], str] = lambda: "") -> Any:
    """Poll ``check`` until it returns something truthy (that value is returned); AssertionError after
    ``timeout`` seconds (a bound for correctness, not a speed claim)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}\n{on_timeout()}"
        time.sleep(every)


def view_docs(events: list[dict]) -> dict[tuple[str, str], dict]:
    """{(view name, key): document} the worker's view folds publish for ``events`` (in order)."""
    from processors import views

    out: dict[tuple[str, str], dict] = {}
    for spec in views.VIEWS:
        if spec.name == "player":
            continue
        published, dead = views.apply_batch(spec, {}, [(None, e) for e in events])
        assert not dead, dead
        for key, (_, doc) in published.items():
            out[(spec.name, key)] = doc
    return out


class RawProducer:
    """Pre-encoded records, produced fast (lz4 batches, acks=all, no per-record callbacks)."""

    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka import Producer

        self._producer = Producer({
            "bootstrap.servers": bootstrap, "linger.ms": 50, "batch.num.messages": 20000,
            "batch.size": 1_000_000, "compression.type": "lz4", "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576, "acks": "all", "enable.idempotence": False,
            "logger": logging.getLogger("tests.raw_producer"),
        })
        self.count = 0

    def send(self, topic: str, key: str | bytes, value: bytes | None) -> None:
        while True:
            try:
                self._producer.produce(topic, value, key)
                break
            except BufferError:
                self._producer.poll(0.05)
        self.count += 1
        if self.count % 10000 == 0:
            self._producer.poll(0)

    def send_doc(self, topic: str, key: str, doc: dict | None) -> None:
        self.send(topic, key, None if doc is None else orjson.dumps(doc))

    def flush(self, timeout: float = 300.0) -> None:
        left = self._producer.flush(timeout)
        assert left == 0, f"{left} records not delivered"


def read_topic(bootstrap: str, topic: str, timeout: float = 120.0) -> list[Any]:
    """Every record of ``topic`` from the beginning up to the end offsets seen now (confluent messages)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-reader", "enable.auto.commit": False,
                         "enable.partition.eof": True, "isolation.level": "read_committed"})
    try:
        md = consumer.list_topics(topic, timeout=30)
        parts = sorted(md.topics[topic].partitions)
        ends = {}
        for p in parts:
            lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            if hi > lo:
                ends[p] = hi
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        out: list[Any] = []
        done: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(done) < len(ends):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for m in consumer.consume(1000, 0.5):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF and m.offset() >= ends.get(m.partition(), 0):
                        done.add(m.partition())
                    continue
                out.append(m)
                if m.offset() + 1 >= ends.get(m.partition(), 0):
                    done.add(m.partition())
        return out
    finally:
        consumer.close()


def tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def base_env(**extra: str) -> dict[str, str]:
    """This process's environment without any PLAYLOG_* variable, plus ``extra``."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYLOG_")}
    env.update(extra)
    return env

