"""The royalty computation in the worker, scaled out: thin Faust agents around the pure stages of
processors/royalty_parts.py.

- ``royalty_join`` on ``royalty.inputs`` (play summaries, partitioned by play_id): one
  :class:`~processors.batches.RoyaltyView` per owned partition holds the join of its plays; the
  plays as decided go to ``royalty.plays``, on the partition of the play's user.
- ``royalty_shard`` on ``royalty.plays`` (decided plays by user, plus every catalog, rights,
  takedown and pool fact, broadcast to every partition): one view per owned partition decides its
  users' streams; every few seconds the changed periods' streams go to ``streams`` and their
  tallies to ``royalty.tallies`` (compacted, key ``<period>|<partition>``).
- ``royalty_money`` on ``royalty.tallies`` (one partition): the latest tally of every shard per
  period and the pools they saw; the money step (processors/royalty_parts.statement_of) gives the
  statement, published on ``view.royalties`` and served at ``/royalties/{period}``.

The join and shard views are checkpointed per partition (worker/checkpoint.py, view names
``join-<p>`` / ``shard-<p>``): a new owner loads the newest checkpoint and folds its partition from
the offset it covers, with the agent's own step. Before a join view is checkpointed, the producer
is flushed: what it sent for the records in the checkpoint is acknowledged, so a new owner never
needs to send it again. The tail a new join owner folds is sent again (joins: harmless).
The money stage's state is small: a new owner reads ``royalty.tallies`` from the start.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson

from core.settings import Settings
from processors import batches, royalties
from processors.batches import RawRecord, RoyaltyView
from processors.royalty_parts import (
    decided_record,
    join_records,
    shard_records,
    statement_of,
    tally_from_json,
    tally_to_json,
)
from topics.topic_catalog import topic_spec
from worker import checkpoint

log = logging.getLogger(__name__)

JOIN_TOPIC = "royalty.inputs"
SHARD_TOPIC = "royalty.plays"
TALLY_TOPIC = "royalty.tallies"
PUBLISH_YIELD_EVERY = 2000  # streams sent between two yields to the loop
CHECKPOINT_COST_FACTOR = 10  # the next checkpoint of a view waits at least 10x as long as its last took


@dataclass
class Held:
    """A view this worker holds for one partition it owns."""

    stage: str  # "join" | "shard"
    partition: int
    view: RoyaltyView = field(default_factory=RoyaltyView)
    ready: bool = False
    loading: bool = False
    generation: int = 0
    through: int = 0  # every record of the partition before this offset is in the view
    last: checkpoint.Manifest | None = None
    since_checkpoint: int = 0
    next_checkpoint: float = 0.0
    loaded: dict[str, Any] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # folds, publications, snapshots
    load_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def name(self) -> str:
        return f"{self.stage}-{self.partition}"


@dataclass
class Money:
    """The money stage's state: the latest tally record of every (period, shard)."""

    tallies: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    ready: bool = False
    generation: int = 0
    through: int = 0
    dirty: set[str] = field(default_factory=set)
    sending: int = 0  # statements sent and not yet acknowledged (pending, like dirty ones)

    def apply(self, raw: bytes) -> str:
        """One ``royalty.tallies`` record; returns its period. ValueError if it is not one."""
        try:
            d = orjson.loads(raw)
            period, part = str(d["period"]), int(d["part"])
            tally_from_json(d["tally"])  # it must decode
            [tuple(p) for p in d["pools"]]  # noqa: B018 - and so must its pools
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a tally record: {exc!r}") from None
        self.tallies[(period, part)] = d
        self.dirty.add(period)
        return period

    def statement_csv(self, period: str) -> str:
        from processors.statement import to_csv

        tallies, pools = [], {}
        for (per, _), d in self.tallies.items():
            if per != period:
                continue
            tallies.append(tally_from_json(d["tally"]))
            for country, product, occ, eid, amount in d["pools"]:  # latest declaration wins
                cur = pools.get((country, product))
                if cur is None or (occ, eid) > cur[:2]:
                    pools[(country, product)] = (occ, eid, amount)
        return to_csv(statement_of(tallies, {cp: v[2] for cp, v in pools.items()}, period))

    def periods(self) -> list[str]:
        return sorted({p for p, _ in self.tallies})


def drop_slowly(view: RoyaltyView) -> None:
    """Free a big view a play at a time, in a thread. Dropping it at once is one C call that holds
    the interpreter lock until tens of millions of objects are freed (0.6 s at 1M plays): the
    loop and the consumer thread's heartbeats would wait that long."""
    plays, by_period, published = view.state.plays, view.state.by_period, view.published
    while plays:
        plays.popitem()
    while by_period:
        _, groups = by_period.popitem()
        while groups:
            groups.popitem()
    while published:
        _, ids = published.popitem()
        while ids:
            ids.pop()


class RoyaltyStages:
    """The three royalty agents of a worker app, their views, timers and pages' data."""

    def __init__(self, app: faust.App, settings: Settings, topic: Callable[[str], faust.TopicT],
                 send_dead: Callable[[list[batches.Dead]], Awaitable[None]],
                 finish_or_hold: Callable[..., Awaitable[None]], until_done: Callable[..., Awaitable[None]],
                 processed: dict[str, int], batch: int, within: float) -> None:
        self.app, self.settings, self.prefix = app, settings, settings.topic_prefix
        self.send_dead, self.processed = send_dead, processed
        self.join_parts = topic_spec(JOIN_TOPIC).partitions
        self.user_parts = topic_spec(SHARD_TOPIC).partitions
        self.inputs_t, self.plays_t, self.tallies_t = topic(JOIN_TOPIC), topic(SHARD_TOPIC), topic(TALLY_TOPIC)
        self.streams_t, self.statements_t = topic("streams"), topic("view.royalties")
        self.held: dict[tuple[str, int], Held] = {}
        self.money = Money()
        self._finish_or_hold, self._until_done = finish_or_hold, until_done
        self.batch, self.within = batch, within
        self._install()

    # -- ownership and loading ---------------------------------------------------------------------
    def owns(self, topic: str, partition: int) -> bool:
        from faust.types import TP

        return TP(self.prefix + topic, partition) in self.app.assignor.assigned_actives()

    def holder(self, stage: str, partition: int) -> Held:
        h = self.held.get((stage, partition))
        if h is None:
            h = self.held[(stage, partition)] = Held(stage, partition)
        return h

    def _topic_of(self, stage: str) -> str:
        return JOIN_TOPIC if stage == "join" else SHARD_TOPIC

    def _fold(self, h: Held, pending: list) -> Callable[[RoyaltyView, list[tuple[int, bytes]]], None]:
        """The agent's step for a recovery's tail (in the loading thread): what a join decides
        and dead-letters there is collected in ``pending`` and sent once the view is loaded."""
        topic = self.prefix + self._topic_of(h.stage)

        def fold(view: RoyaltyView, recs: list[tuple[int, bytes]]) -> None:
            if not recs:
                return
            values = [v for _, v in recs]
            raws = [RawRecord(topic, h.partition, off, v) for off, v in recs]
            if h.stage == "join":
                out, foreign, bad = join_records(view, self.user_parts, values)
                pending.append((out, [batches.Dead(raws[i], batches.foreign_reason(*f)) for i, f in foreign]))
            else:
                bad = shard_records(view, values)
            del bad  # dead-lettered when first folded

        return fold

    async def load(self, h: Held) -> bool:
        """Load ``h``'s view if this worker owns its partition and does not hold it yet."""
        topic = self._topic_of(h.stage)
        if h.ready or not self.owns(topic, h.partition):
            return h.ready and self.owns(topic, h.partition)
        async with h.load_lock:
            if h.ready:
                return self.owns(topic, h.partition)
            generation = h.generation
            pending: list = []
            h.loading = True
            t0 = time.perf_counter()
            try:
                got = await asyncio.to_thread(checkpoint.recover, self.settings, h.name, topic, h.partition,
                                              self._fold(h, pending))
            finally:
                h.loading = False
            if generation != h.generation or not self.owns(topic, h.partition):
                log.info("%s[%d] revoked while its view was loading: dropped", topic, h.partition)
                return False
            for out, dead in pending:  # what the tail decided: sent again (joins downstream)
                await self.send_decided(h.partition, out)
                await self.send_dead(dead)
            h.view = got.view
            h.ready, h.through, h.last, h.since_checkpoint = True, got.through, got.manifest, got.tail_records
            h.loaded = {"checkpoint_through": got.manifest.through if got.manifest else None,
                        "tail_records": got.tail_records, "through": got.through,
                        "seconds": round(time.perf_counter() - t0, 3)}
            log.info("royalty view %s loaded in %.1fs: %s", h.name, time.perf_counter() - t0, got.describe())
            return True

    async def load_money(self) -> bool:
        m = self.money
        if m.ready or not self.owns(TALLY_TOPIC, 0):
            return m.ready and self.owns(TALLY_TOPIC, 0)
        generation = m.generation

        def read() -> tuple[dict, int]:
            end = checkpoint.end_offset(self.settings, TALLY_TOPIC)
            fresh = Money()
            for _, _, value in checkpoint.read_topic(self.settings, TALLY_TOPIC, 0, end):
                try:
                    fresh.apply(value or b"")
                except ValueError:
                    continue  # dead-lettered when first folded
            return fresh.tallies, end

        tallies, end = await asyncio.to_thread(read)
        if generation != m.generation or not self.owns(TALLY_TOPIC, 0):
            return False
        m.tallies, m.through, m.ready = tallies, end, True
        m.dirty = {p for p, _ in tallies}
        log.info("royalty money stage loaded: %d tally record(s) of %d period(s)", len(tallies), len(m.dirty))
        return True

    def on_revoked(self) -> None:
        for h in self.held.values():
            if h.ready or h.loading:
                old, h.view = h.view, RoyaltyView()
                threading.Thread(target=drop_slowly, args=(old,), name="drop-royalty-view", daemon=True).start()
            h.ready, h.generation, h.since_checkpoint = False, h.generation + 1, 0
        self.money.ready, self.money.generation = False, self.money.generation + 1
        self.money.tallies = {}

    # -- sending ---------------------------------------------------------------------------------------
    async def send_decided(self, source_partition: int, out: list) -> None:
        by_user: dict[int, list[tuple[str, bytes]]] = {}
        for u, d in out:
            by_user.setdefault(u, []).append(decided_record(d))
        for u, items in sorted(by_user.items()):
            for packed in batches.pack_facts(items):
                await self.plays_t.send(key=f"join-{source_partition}".encode(), value=packed, partition=u, force=True)

    async def broadcast_facts(self, source: str, facts: list[tuple[str, bytes]]) -> None:
        """Catalog, rights, takedown and pool facts: to every shard."""
        for packed in batches.pack_facts(facts):
            for u in range(self.user_parts):
                await self.plays_t.send(key=source.encode(), value=packed, partition=u, force=True)

    async def send_summaries(self, facts: list[tuple[str, bytes]], key: bytes) -> None:
        """Play facts (``fact_of_summary``) to the join partition of their play_id."""
        from processors.royalty_parts import part_of

        by_part: dict[int, list[tuple[str, bytes]]] = {}
        for k, raw in facts:
            by_part.setdefault(part_of(k[2:], self.join_parts), []).append((k, raw))
        for p, items in sorted(by_part.items()):
            for packed in batches.pack_facts(items):
                await self.inputs_t.send(key=key, value=packed, partition=p, force=True)

    # -- agents, timers ----------------------------------------------------------------------------------
    def _install(self) -> None:
        app = self.app

        async def staged(stage: str, events: list, passed: set[int]) -> None:
            """Fold a batch; the partitions no longer owned (revoked since the batch was fetched) are
            passed over and added to ``passed``: their records are left unacked, the new owner's."""
            by_part: dict[int, list] = {}
            for e in events:
                by_part.setdefault(e.message.partition, []).append(e)
            for p, evs in sorted(by_part.items()):
                h = self.holder(stage, p)
                # just assigned: loading (a timer retries it). A batch fetched before a rebalance
                # may hold a revoked partition's records: waiting for its view would block this
                # agent, and every partition it still owns, for good (a bench run with 2 workers
                # did: royalty.plays[2] and [3] were never delivered)
                owned = True
                while not await self.load(h):
                    if not self.owns(self._topic_of(stage), p):
                        owned = False
                        break
                    await asyncio.sleep(0.2)
                if not owned:
                    passed.add(p)
                    continue
                fresh = [e for e in evs if e.message.offset >= h.through]  # the rest is in the view
                if fresh:
                    raws = [RawRecord(e.message.topic, e.message.partition, e.message.offset, e.message.value)
                            for e in fresh]
                    values = [r.value or b"" for r in raws]
                    async with h.lock:
                        if stage == "join":
                            out, foreign, bad = join_records(h.view, self.user_parts, values)
                        else:
                            out, foreign, bad = [], [], shard_records(h.view, values)
                    if out:
                        await self.send_decided(p, out)
                    await self.send_dead([batches.Dead(raws[i], r) for i, r in bad]
                                         + [batches.Dead(raws[i], batches.foreign_reason(*f)) for i, f in foreign])
                    # only now: a retry of this step (a send failed) folds the records again
                    h.through = max(h.through, fresh[-1].message.offset + 1)
                    h.since_checkpoint += len(fresh)
                topic = self._topic_of(stage)
                self.processed[topic] = self.processed.get(topic, 0) + len(evs)

        async def stage_batch(stage: str, events: list) -> None:
            passed: set[int] = set()
            await self._finish_or_hold(app.consumer, events,
                                       self._until_done(f"royalty {stage}", lambda: staged(stage, events, passed)),
                                       leave=lambda m: m.partition in passed)

        @app.agent(self.inputs_t, name="royalty_join")
        async def royalty_join(stream: faust.StreamT) -> None:
            async for events in stream.take_events(self.batch, within=self.within):
                await stage_batch("join", events)

        @app.agent(self.plays_t, name="royalty_shard")
        async def royalty_shard(stream: faust.StreamT) -> None:
            async for events in stream.take_events(self.batch, within=self.within):
                await stage_batch("shard", events)

        @app.agent(self.tallies_t, name="royalty_money")
        async def royalty_money(stream: faust.StreamT) -> None:
            async for events in stream.take_events(self.batch, within=self.within):
                passed: set[int] = set()

                async def step(events: list = events, passed: set[int] = passed) -> None:
                    while not await self.load_money():
                        if not self.owns(TALLY_TOPIC, 0):  # revoked since fetched: the new owner's
                            passed.add(0)
                            return
                        await asyncio.sleep(0.2)
                    bad = []
                    for e in events:
                        if e.message.offset < self.money.through:
                            continue
                        try:
                            self.money.apply(e.message.value or b"")
                        except ValueError as exc:
                            bad.append(batches.Dead(RawRecord(e.message.topic, e.message.partition,
                                                              e.message.offset, e.message.value), str(exc)))
                    await self.send_dead(bad)
                    self.money.through = max(self.money.through, events[-1].message.offset + 1)
                    self.processed[TALLY_TOPIC] = self.processed.get(TALLY_TOPIC, 0) + len(events)

                await self._finish_or_hold(app.consumer, events, self._until_done("royalty money", step),
                                           leave=lambda m, passed=passed: m.partition in passed)

        self.agents = (royalty_join, royalty_shard, royalty_money)

    def owned_holders(self) -> list[Held]:
        out = []
        for (stage, p) in [("join", p) for p in range(self.join_parts)] + [("shard", u) for u in range(self.user_parts)]:
            if self.owns(self._topic_of(stage), p):
                out.append(self.holder(stage, p))
        return out

    async def load_owned(self) -> None:
        for h in self.owned_holders():
            await self.load(h)
        await self.load_money()

    async def publish(self) -> None:
        """The changed periods of every shard held: streams (compacted, by play_id, tombstones for
        plays no longer streams) and tallies; then the money stage's changed statements."""
        for h in [h for h in self.held.values() if h.stage == "shard" and h.ready]:
            async with h.lock:
                periods = h.view.take_dirty()
                for n, period in enumerate(periods):
                    before = h.view.published.get(period)
                    try:
                        await self._publish_period(h, period)
                    except BaseException:
                        # published again on the next tick, tombstones included
                        if before is None:
                            h.view.published.pop(period, None)
                        else:
                            h.view.published[period] = before
                        h.view.dirty.update(periods[n:])
                        raise
        m = self.money
        if m.ready and self.owns(TALLY_TOPIC, 0):
            for period in sorted(m.dirty):
                # taken off before the send: a tally the money agent applies while this send is
                # awaited marks the period dirty again, and it is published on the next tick (it
                # used to be taken off after the await, losing that mark: the topic kept a stale
                # statement while the worker served the right one; seen in CI)
                m.dirty.discard(period)
                m.sending += 1
                try:
                    sent = await self.statements_t.send(key=period.encode(),
                                                        value=m.statement_csv(period).encode(), force=True)
                    await sent  # acknowledged, or the period is dirty again
                except BaseException:
                    m.dirty.add(period)
                    raise
                finally:
                    m.sending -= 1

    async def _publish_period(self, h: Held, period: str) -> None:
        for i, (pid, raw) in enumerate(h.view.stream_changes(period)):
            await self.streams_t.send(key=pid.encode(), value=raw, force=True)
            if i % PUBLISH_YIELD_EVERY == PUBLISH_YIELD_EVERY - 1:
                await asyncio.sleep(0)  # a whole period's streams: the loop serves the rest too
        tally = royalties.tally(h.view.state, period)
        pools = [[c, p, *v] for (per, c, p), v in h.view.state.pools.items() if per == period]
        record = {"period": period, "part": h.partition, "tally": tally_to_json(tally), "pools": pools,
                  "facts": h.view.facts}
        # waited for: a tally the broker refuses (too large, say) must not be lost silently; the
        # period is published again on the next tick
        sent = await self.tallies_t.send(key=f"{period}|{h.partition}".encode(), value=orjson.dumps(record),
                                         partition=0, force=True)
        await sent

    async def write_checkpoints(self) -> None:
        for h in list(self.held.values()):
            if not h.ready or h.since_checkpoint == 0 or time.monotonic() < h.next_checkpoint:
                continue
            await self.write_checkpoint(h)

    async def write_checkpoint(self, h: Held) -> None:
        slot = checkpoint.next_slot(h.last)
        t0 = time.perf_counter()
        try:
            async with h.lock:  # nothing folds into this view meanwhile
                # what was sent for the records in the snapshot is acknowledged first
                await self.app.producer.flush()
                n, through, facts, generation, view = h.since_checkpoint, h.through, h.view.facts, h.generation, h.view
                # publications hold this lock too, and were just flushed: what the view counts as
                # published is acknowledged, so a view restored from this checkpoint need not
                # publish every period again
                snapshot = await asyncio.to_thread(view.to_snapshot, True)
            t_snap = time.perf_counter() - t0
            if generation != h.generation:
                return
            records = await asyncio.to_thread(checkpoint.records_of, snapshot, slot=slot, through=through,
                                              facts=facts, name=h.name)
            await asyncio.to_thread(checkpoint.write, self.settings, records)
        except Exception:  # noqa: BLE001 - the next tick writes a newer one; recovery reads the other slot
            log.exception("checkpoint of %s not written", h.name)
            return
        if generation != h.generation:
            return
        h.last = checkpoint.Manifest.parse(records[-1][1])
        h.since_checkpoint = max(0, h.since_checkpoint - n)
        h.next_checkpoint = time.monotonic() + CHECKPOINT_COST_FACTOR * t_snap
        log.info("checkpoint %s %s written: %d facts, %s[%d] before offset %d, %d bytes in %d chunk(s), "
                 "encoded in %.1fs, %.1fs in all", h.name, slot, facts, self._topic_of(h.stage), h.partition,
                 through, sum(len(v) for _, v in records), len(records) - 1, t_snap, time.perf_counter() - t0)

    # -- what the pages show -----------------------------------------------------------------------------
    def statement_ready(self) -> bool:
        return self.money.ready and self.owns(TALLY_TOPIC, 0)

    def status(self) -> dict[str, Any]:
        held = [h for h in self.held.values() if h.ready]
        return {
            "owner": self.statement_ready(),
            # periods whose streams/tallies/statement this worker has yet to publish (0: settled)
            "pending": sum(len(h.view.dirty) + h.view.all_dirty for h in held if h.stage == "shard")
            + len(self.money.dirty) + self.money.sending + sum(h.loading for h in self.held.values()),
            "royalty_facts": sum(h.view.facts for h in held),
            "periods": self.money.periods() if self.statement_ready() else [],
            "views": {h.name: {"facts": h.view.facts, "through": h.through, "loaded": h.loaded,
                               "checkpoint": h.last.__dict__ if h.last else None} for h in held},
        }

    def loading(self) -> bool:
        return any(h.loading for h in self.held.values())
