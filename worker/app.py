"""The Faust app: thin agents that decode, call the pure folds, write tables and output topics.

Agents (all batch with ``stream.take_events`` and ack after the batch is processed, so transport
is at-least-once; every effect is idempotent, so effects are exactly-once):

- ``listening`` (only with ``faust_plays``; by default worker/plays_stage.py does it): listening
  events -> play summaries (processors/batches.py) -> ``royalty.inputs``, on the partition of
  their play_id.
- one agent per source topic (catalog, rights, finance, users, player, playlists): per-key folds
  into tables whose documents are published on the compacted ``view.*`` topics for the API's read
  replicas; the catalog, rights and finance events the royalty rules need -> ``royalty.plays``
  (every partition).
- ``royalty_join``, ``royalty_shard``, ``royalty_money``: the royalty computation in three stages
  that scale out with the workers (worker/royalty.py). ``GET /royalties/{period}`` on the worker
  that owns the money step answers with the statement CSV.

Anything that fails to decode or breaks an invariant goes to ``deadletter`` with its source
topic/partition/offset and a reason; an agent never crashes on input.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import faust
from faust import streams as faust_streams
from faust.web import Request, Response, View

from core.settings import Settings, load
from processors import batches, views
from processors.batches import RawRecord
from schemas.codec import default_codec
from topics.deadletter import DEADLETTER_TOPIC, deadletter_record
from topics.topic_catalog import topic_spec
from worker import faust_fixes, progress, royalty

log = logging.getLogger(__name__)

BATCH = 20000
PROGRESS_EVERY = 5.0  # seconds between lag samples (/metrics, /livez)
PUBLISH_EVERY = 5.0  # seconds between publications of streams and statements
MAX_RECORD_BYTES = 32 * 1024 * 1024  # statements outgrow 1 MiB (topics/topic_catalog.json view.royalties)
WITHIN = 0.05


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


async def until_done(what: str, step: Callable[[], Awaitable[None]]) -> None:
    """Run one batch step until it succeeds.

    Bad input never raises here (it is dead-lettered); what does raise is infrastructure (a
    broker hiccup, metadata not yet propagated). Faust would restart a crashed agent *after*
    acknowledging the batch it was holding, losing it, so the batch is retried instead: every
    effect is idempotent, so applying part of it twice is harmless.
    """
    delay = 0.5
    while True:
        try:
            await step()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: batch failed; retrying in %.1fs", what, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


class _Fault:
    """Tests only (``PLAYLOG_WORKER_FAULT=stall_after:<n>``): after n batches the source agents stop
    processing (the web pages still answer), once per state dir, to prove the liveness check."""

    def __init__(self, settings: Settings, datadir: Path) -> None:
        where, _, n = settings.worker_fault.partition(":")
        self.after = int(n) if where == "stall_after" and n.isdigit() else None
        self.marker = Path(datadir) / "fault-stalled"
        self.batches = 0

    async def maybe_stall(self) -> None:
        if self.after is None or self.marker.exists():
            return
        self.batches += 1
        if self.batches > self.after:
            self.marker.write_text("stalled by PLAYLOG_WORKER_FAULT\n")
            log.warning("fault injection: agents stall after %d batches", self.after)
            await asyncio.Event().wait()


async def finish_or_hold(consumer: Any, events: list, work: Awaitable[None],
                         leave: Callable[[Any], bool] | None = None) -> None:
    """Run a batch's work and ack the batch's records only once it is done; a batch cut short (the
    agent is cancelled: a stop, a restart) is never acked, so its offsets are never committed and
    it is delivered again (every effect is idempotent).

    Faust acks a batch from ``stream.take_events`` in the generator's ``finally``, and at a
    graceful stop ``Stream.on_stop`` closes that generator (``aclose``) *before* the agent is
    cancelled, while the agent still holds the batch: the offsets were then committed by the
    consumer's last commit (seen: after SIGTERM, a finance batch of 12 pools that no agent had
    processed was committed; the statement came back with every amount 0). So the records are
    marked acked up front, which makes Faust's own acks no-ops, and acked here for real after
    the work.

    ``leave(message)`` true: that record is not acked at all (the work passed over it: its
    partition was revoked meanwhile, so it is the new owner's to process; acking it would let a
    later commit step over it if the partition came back here).
    """
    messages = [e.message for e in events]
    for m in messages:
        m.acked = True  # Message.ack() returns early: Faust's acks of this batch do nothing
    try:
        await work
    except BaseException as exc:
        log.warning("batch of %d record(s) cut short (%s): held back from the commit", len(events),
                    type(exc).__name__)
        raise
    for m in messages:
        if leave is not None and leave(m):
            continue  # stays marked acked: Faust's own ack of it does nothing either
        m.acked = False
        consumer.ack(m)  # the consumer's bookkeeping: this offset may be committed now


def _raw(event: Any) -> RawRecord:
    m = event.message
    return RawRecord(m.topic, m.partition, m.offset, m.value)


def create_app(
    settings: Settings | None = None, *, web_port: int = 6066, name: str = "w1", faust_plays: bool = False
) -> faust.App:
    """The worker app. ``faust_plays``: run the plays stage as a Faust agent too (by default
    ``playlog worker`` runs it in its own process, worker/plays_stage.py, which is faster)."""
    faust_fixes.install()
    settings = settings or load()
    prefix = settings.topic_prefix
    codec = default_codec()
    datadir = settings.data_dir / "worker" / f"{prefix.rstrip('.') or 'default'}-{name}"
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
        topic_allow_declare=True,  # Faust creates its own changelog topics; ours come from topics/topic_catalog.json
        topic_disable_leader=True,
        stream_wait_empty=False,
        broker_commit_every=BATCH,
        broker_commit_interval=1.0,
        table_cleanup_interval=60.0,
        broker_session_timeout=10.0,
        # batched produce (agents work in batches). Deeper stream buffers / bigger polls
        # (stream_buffer_maxsize, broker_max_poll_records) made a restarted worker stall on
        # topics several agents share, so they stay at Faust's defaults.
        producer_linger=0.02,
        producer_max_batch_size=1024 * 1024,
        producer_max_request_size=MAX_RECORD_BYTES,
        broker_heartbeat_interval=2.0,
        key_serializer="raw",
        value_serializer="raw",
        logging_config=None,
    )

    def topic(name: str, **kw: Any) -> faust.TopicT:
        return app.topic(prefix + name, key_type=bytes, value_type=bytes, **kw)

    listening_t = topic("listening")
    deadletter_t = topic(DEADLETTER_TOPIC)

    stats: dict[str, float] = {"listening": 0, "listening_s": 0.0}
    processed: dict[str, int] = {}  # source topic (catalog name) -> records this worker's agents processed
    fault = _Fault(settings, datadir)

    async def send_dead(dead: list[batches.Dead]) -> None:
        for d in dead:
            key, value, headers = deadletter_record(d.record, d.reason)
            # Faust's raw serializer takes bytes: a record that had no value goes as b""
            await deadletter_t.send(force=True, key=key, value=value or b"", headers=headers)
            log.warning("dead-lettered %s[%s]@%s: %s", d.record.topic, d.record.partition, d.record.offset, d.reason)

    # the royalty computation in three stages (worker/royalty.py): join, shards, money step
    stages = royalty.RoyaltyStages(app, settings, topic, send_dead, finish_or_hold, until_done, processed,
                                   BATCH, WITHIN)

    async def listening(stream: faust.StreamT) -> None:
        async for events in stream.take_events(BATCH, within=WITHIN):
            async def step(events: list = events) -> None:
                t0 = time.perf_counter()
                good, dead = batches.decode_batch(codec, [_raw(e) for e in events], prefix=prefix)
                await send_dead(dead)
                facts = [batches.fact_of_summary(s) for s in batches.play_summaries(ev for _, ev in good)]
                await stages.send_summaries(facts, key=b"plays")
                stats["listening"] += len(events)
                stats["listening_s"] += time.perf_counter() - t0

            await finish_or_hold(app.consumer, events, until_done("listening", step))

    if faust_plays:
        app.agent(listening_t, name="listening")(listening)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: Any = None, **kwargs: Any) -> None:
        # the views may move to other workers: dropped; loaded again when owned again
        stages.on_revoked()

    @app.timer(interval=1.0)
    async def load_views_when_owned() -> None:
        try:
            await stages.load_owned()
        except Exception:  # noqa: BLE001 - retried on the next tick; the agents wait meanwhile
            log.exception("loading a royalty view failed; retrying")

    @app.timer(interval=5.0)
    async def fetch_stuck_partitions_again() -> None:
        try:
            await faust_fixes.rewind_stuck(app.consumer, time.monotonic())
        except Exception:  # noqa: BLE001 - a watchdog never takes the worker down
            log.exception("stuck-partition check failed")

    @app.timer(interval=float(settings.checkpoint_seconds))
    async def write_checkpoints() -> None:
        """Each held view's checkpoint, when it changed since its last one."""
        await stages.write_checkpoints()

    @app.timer(interval=PUBLISH_EVERY)
    async def publish_streams_tallies_and_statements() -> None:
        try:
            await stages.publish()
        except Exception:  # noqa: BLE001 - an exception in a Faust timer crashes the whole worker
            log.exception("publishing streams, tallies and statements failed; retried on the next tick")

    # -- one agent per source topic: per-key views (API read replicas) and royalty facts --------
    # Each topic has exactly one agent: with several Faust agents (or a multi-topic agent) on the
    # same topic, a worker restarted after SIGKILL stopped receiving those topics.
    tables = {
        spec.name: app.Table(f"view_{spec.name}", key_type=str, value_type=bytes,
                             # changelog co-partitioned with the source topic (same count, same key)
                             partitions=topic_spec(spec.source_topics[0]).partitions)
        for spec in views.VIEWS
    }
    view_topics = {spec.name: topic(f"view.{spec.name}") for spec in views.VIEWS}
    # A view fed by two topics (rights: rights and catalog) is folded by two agents: each folds and then
    # publishes under its view's lock, so the documents reach the view topic in the order they were
    # folded (else an agent could publish an older document of a key after the other's newer one,
    # and that stale one would be what compaction keeps).
    view_locks = {spec.name: asyncio.Lock() for spec in views.VIEWS}
    source_names = sorted({t for spec in views.VIEWS for t in spec.source_topics} | {"finance"})

    def make_topic_agent(source: str) -> None:
        specs = [spec for spec in views.VIEWS if source in spec.source_topics]
        forwards_facts = source in ("catalog", "rights", "finance")

        async def agent(stream: faust.StreamT) -> None:
            async for events in stream.take_events(BATCH, within=WITHIN):
                async def step(events: list = events) -> None:
                    await fault.maybe_stall()
                    pairs = [(_raw(e), e) for e in events]
                    good, dead = batches.decode_batch(codec, [r for r, _ in pairs], prefix=prefix)
                    await send_dead(dead)
                    by_rec = {(r.topic, r.partition, r.offset): e for r, e in pairs}
                    items = [(by_rec[(r.topic, r.partition, r.offset)], ev) for r, ev in good]
                    for spec in specs:
                        table = tables[spec.name]

                        def write(key: str, raw: bytes, src: Any, table: Any = table) -> None:
                            with in_event(src):  # the key's partition: same key, same partition count
                                table[key] = raw

                        async with view_locks[spec.name]:
                            published, refused = views.apply_batch(spec, table, items, write)
                            for key, (_, doc) in published.items():
                                await view_topics[spec.name].send(key=key.encode(), value=views.dumps(doc),
                                                                  force=True)
                        await send_dead([batches.Dead(_raw(src), f"{spec.name}: {reason}") for src, reason in refused])
                    if forwards_facts:
                        facts = [batches.fact_of_event(codec, ev) for _, ev in items
                                 if ev["type"] in batches.ROYALTY_EVENT_TYPES]
                        await stages.broadcast_facts(source, facts)

                await finish_or_hold(app.consumer, events, until_done(f"topic {source}", step))
                processed[source] = processed.get(source, 0) + len(events)

        agent.__name__ = f"on_{source}"
        app.agent(topic(source), name=f"on_{source}")(agent)

    for source in source_names:
        make_topic_agent(source)

    @app.page("/royalties/{period}")
    class RoyaltyStatement(View):
        async def get(self, request: Request, period: str) -> Response:
            import re

            if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
                return self.json({"error": {"status": 400, "message": "period must be YYYY-MM"}}, status=400)
            if not stages.statement_ready():
                return self.json({"error": {"status": 503, "message": "this worker does not hold the royalty "
                                            "money step (yet)"}}, status=503)
            return self.text(stages.money.statement_csv(period), content_type="text/csv")

    @app.page("/status")
    class Status(View):
        async def get(self, request: Request) -> Response:
            return self.json({**stages.status(), "processed": stats})

    # -- progress you can see: lag per partition, processed per topic, liveness -------------------
    royalty_topics = [royalty.JOIN_TOPIC, royalty.SHARD_TOPIC, royalty.TALLY_TOPIC]
    faust_topics = [prefix + t for t in [*source_names, *royalty_topics]]
    # append-only topics: offsets without holes, so a commit never steps over one (faust_fixes #3)
    faust_fixes.set_contiguous_topics(prefix + t for t in [*source_names, *royalty_topics]
                                      if topic_spec(t).cleanup_policy == "delete")
    detector = progress.StallDetector(settings.worker_stall_seconds)
    latest = {"sample": progress.Sample()}

    def sample_now() -> progress.Sample:  # runs in a thread: blocking Kafka admin calls
        from topics.lag import partition_lag

        parts = {}
        for group, topics in ((f"{prefix}worker", faust_topics), (f"{prefix}plays", [prefix + "listening"])):
            for (t, p), pl in partition_lag(settings, group, topics).items():
                parts[(group, t, p)] = pl
        return progress.Sample(at=progress.now(), partitions=parts)

    @app.timer(interval=PROGRESS_EVERY)
    async def sample_progress() -> None:
        try:
            sample = await asyncio.to_thread(sample_now)
        except Exception as exc:  # noqa: BLE001 - a missed sample is reported, never fatal
            latest["sample"].error = str(exc)
            return
        sample.owned = frozenset((tp.topic, tp.partition) for tp in app.assignor.assigned_actives())
        sample.processed = dict(processed)
        sample.rewinds = dict(faust_fixes.REWINDS)
        sample.recovering = bool(getattr(app, "rebalancing", False) or getattr(app, "in_recovery", False)
                                 or stages.loading())
        sample.view_ready = stages.statement_ready()
        sample.stalled = detector.observe(time.monotonic(), progress.owned_lag(sample, f"{prefix}worker"),
                                          sum(processed.values()), sample.recovering)
        latest["sample"] = sample

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            body = progress.render(latest["sample"], name, prefix)
            return self.bytes(body, content_type="text/plain; version=0.0.4")

    @app.page("/livez")
    class Livez(View):
        async def get(self, request: Request) -> Response:
            s = latest["sample"]
            body = {"live": not s.stalled, "lag_owned": progress.owned_lag(s, f"{prefix}worker"),
                    "idle_s": round(detector.idle_seconds(time.monotonic()), 1), "recovering": s.recovering,
                    "processed": sum(processed.values()), "sampled_at": s.at, "error": s.error}
            return self.json(body, status=200 if not s.stalled else 503)

    app.playlog_stages = stages  # type: ignore[attr-defined]
    return app
