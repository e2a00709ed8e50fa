"""The Faust app: thin agents that decode, call the pure folds, write tables and output topics.

Agents (all batch with ``stream.take_events`` and ack after the batch is processed, so transport
is at-least-once; every effect is idempotent, so effects are exactly-once):

- ``listening``: listening events -> play summaries (processors/pipeline.py) -> ``royalty.inputs``
  (one partition: the royalty view is global per (period, country, product)).
- ``royalty_sources``: catalog, rights and finance events the royalty rules need -> ``royalty.inputs``.
- ``royalty``: folds ``royalty.inputs`` into the live royalty view; every fact is also written to
  the changelog-backed table ``royalty_facts`` (RocksDB via rocksdict), from which a restarted
  worker rebuilds the view. ``GET /royalties/{period}`` on the worker's web port answers with
  the statement CSV (routed to the worker that owns the view).
- ``views``: per-key folds (catalog, rights, users, player, playlists) into tables whose
  documents are published on the compacted ``view.*`` topics for the API's read replicas.

Anything that fails to decode or breaks an invariant goes to ``deadletter`` with its source
topic/partition/offset and a reason; an agent never crashes on input.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faust
from faust import streams as faust_streams
from faust.web import Request, Response, View

from playlog.config import Settings, load
from processors import pipeline, views
from processors.pipeline import RawRecord
from schemas.codec import default_codec
from topics.catalog import topic_spec

log = logging.getLogger(__name__)

BATCH = 5000
WITHIN = 0.25


@contextmanager
def in_event(event: Any) -> Iterator[None]:
    """Make ``event`` Faust's current event while a table is written.

    Batches from ``stream.take_events`` have no current event, but a table write needs one: its
    partition decides the changelog partition and the RocksDB partition store, so that a worker
    that later takes over the source partition recovers exactly that state.
    """
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


def _raw(event: Any) -> RawRecord:
    m = event.message
    return RawRecord(m.topic, m.partition, m.offset, m.value)


def create_app(settings: Settings | None = None, *, web_port: int = 6066, name: str = "w1") -> faust.App:
    settings = settings or load()
    prefix = settings.topic_prefix
    codec = default_codec()
    datadir = settings.data_dir / "worker" / name
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{prefix}worker",
        broker=f"kafka://{settings.bootstrap_servers}",
        store="rocksdb://",
        datadir=str(datadir),
        web_port=web_port,
        web_host="127.0.0.1",
        web_bind="127.0.0.1",
        web_in_thread=False,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=True,  # Faust creates its own changelog topics; ours come from topics/catalog.json
        topic_disable_leader=True,
        stream_wait_empty=False,
        broker_commit_every=BATCH,
        broker_commit_interval=1.0,
        table_cleanup_interval=60.0,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        key_serializer="raw",
        value_serializer="raw",
        logging_config=None,
    )

    def topic(name: str, **kw: Any) -> faust.TopicT:
        return app.topic(prefix + name, key_type=bytes, value_type=bytes, **kw)

    listening_t = topic("listening")
    royalty_src_t = app.topic(prefix + "catalog", prefix + "rights", prefix + "finance",
                              key_type=bytes, value_type=bytes)
    inputs_t = topic("royalty.inputs")
    deadletter_t = topic("deadletter")

    royalty_facts = app.Table("royalty_facts", key_type=bytes, value_type=bytes, partitions=1)
    view = pipeline.RoyaltyView()
    rebuilt = {"done": False}

    async def send_dead(dead: list[pipeline.Dead]) -> None:
        for d in dead:
            await deadletter_t.send(
                key=d.record.topic.encode(), value=d.record.value or b"",
                headers=[("reason", d.reason.encode()), ("source.topic", d.record.topic.encode()),
                         ("source.partition", str(d.record.partition).encode()),
                         ("source.offset", str(d.record.offset).encode())],
            )
            log.warning("dead-lettered %s[%s]@%s: %s", d.record.topic, d.record.partition, d.record.offset, d.reason)

    @app.agent(listening_t)
    async def listening(stream: faust.StreamT) -> None:
        async for events in stream.take_events(BATCH, within=WITHIN):
            good, dead = pipeline.decode_batch(codec, [_raw(e) for e in events])
            await send_dead(dead)
            for s in pipeline.play_summaries(ev for _, ev in good):
                key, value = pipeline.fact_of_summary(s)
                await inputs_t.send(key=key.encode(), value=value)

    @app.agent(royalty_src_t)
    async def royalty_sources(stream: faust.StreamT) -> None:
        async for events in stream.take_events(BATCH, within=WITHIN):
            good, dead = pipeline.decode_batch(codec, [_raw(e) for e in events])
            await send_dead(dead)
            for _, ev in good:
                if ev["type"] in pipeline.ROYALTY_EVENT_TYPES:
                    key, value = pipeline.fact_of_event(codec, ev)
                    await inputs_t.send(key=key.encode(), value=value)

    def owner() -> bool:
        from faust.types import TP

        return TP(prefix + "royalty.inputs", 0) in app.assignor.assigned_actives()

    def ensure_rebuilt() -> bool:
        """Build the in-memory view from the recovered table once this worker owns it."""
        if rebuilt["done"]:
            return True
        if not owner() or not app.tables.recovery.completed.is_set():
            return False
        n = 0
        for _, raw in royalty_facts.items():
            view.apply(pipeline.parse_fact(raw))
            n += 1
        rebuilt["done"] = True
        log.info("royalty view rebuilt from %d stored facts", n)
        return True

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: Any = None, **kwargs: Any) -> None:
        # the view may move to another worker: drop it; it is rebuilt from the table when owned again
        view.__init__()
        rebuilt["done"] = False

    @app.agent(inputs_t)
    async def royalty(stream: faust.StreamT) -> None:
        async for events in stream.take_events(BATCH, within=WITHIN):
            ensure_rebuilt()
            for e in events:
                key = e.key if isinstance(e.key, bytes) else str(e.key).encode()
                raw = e.value
                try:
                    fact = pipeline.parse_fact(raw)
                    if fact["kind"] == "play":
                        with in_event(e):
                            raw = pipeline.merge_summary_bytes(royalty_facts.get(key), raw)
                        fact = pipeline.parse_fact(raw)
                    view.apply(fact)
                except (ValueError, KeyError, TypeError) as exc:
                    await send_dead([pipeline.Dead(_raw(e), f"bad royalty fact: {exc}")])
                    continue
                with in_event(e):
                    royalty_facts[key] = raw

    # -- per-key views for the API's read replicas ------------------------------------------
    def make_view_agent(spec: views.ViewSpec) -> None:
        # changelog co-partitioned with the source topic (same count, same key)
        table = app.Table(f"view_{spec.name}", key_type=str, value_type=bytes,
                          partitions=topic_spec(spec.source_topics[0]).partitions)
        src = app.topic(*(prefix + t for t in spec.source_topics), key_type=bytes, value_type=bytes)
        out_t = topic(f"view.{spec.name}")

        def write(key: str, raw: bytes, source: Any) -> None:
            with in_event(source):
                table[key] = raw

        async def agent(stream: faust.StreamT) -> None:
            async for events in stream.take_events(BATCH, within=WITHIN):
                pairs = [(_raw(e), e) for e in events]
                good, dead = pipeline.decode_batch(codec, [r for r, _ in pairs])
                by_rec = {(r.topic, r.partition, r.offset): e for r, e in pairs}
                # only the views' own source topic reports undecodable records (no double dead letters)
                await send_dead([d for d in dead if d.record.topic == prefix + spec.source_topics[0]])
                items = [(by_rec[(r.topic, r.partition, r.offset)], ev) for r, ev in good]
                published, refused = views.apply_batch(spec, table, items, write)
                await send_dead([pipeline.Dead(_raw(src_ev), f"{spec.name}: {reason}") for src_ev, reason in refused])
                for key, (_, doc) in published.items():
                    await out_t.send(key=key.encode(), value=views.dumps(doc))

        agent.__name__ = f"view_{spec.name}"
        app.agent(src, name=f"view_{spec.name}")(agent)

    for spec in views.VIEWS:
        make_view_agent(spec)

    @app.page("/royalties/{period}")
    class RoyaltyStatement(View):
        async def get(self, request: Request, period: str) -> Response:
            import re

            if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
                return self.json({"error": {"status": 400, "message": "period must be YYYY-MM"}}, status=400)
            if not ensure_rebuilt():
                return self.json({"error": {"status": 503, "message": "this worker does not hold the royalty view (yet)"}},
                                 status=503)
            return self.text(view.statement_csv(period), content_type="text/csv")

    @app.page("/status")
    class Status(View):
        async def get(self, request: Request) -> Response:
            ready = ensure_rebuilt()
            return self.json({"owner": owner() and ready, "royalty_facts": view.facts, "periods": view.periods()})

    app.playlog_view = view  # type: ignore[attr-defined]
    app.playlog_tables = {"royalty_facts": royalty_facts}  # type: ignore[attr-defined]
    return app
