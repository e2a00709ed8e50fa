"""Two small, documented patches of faust-streaming 0.15 / aiokafka that at-least-once needs.

Both were found chasing partitions that stopped being consumed, or came back with lag 0 and
facts missing, after SIGKILLs and wiped-state restarts of several workers (tests/integration/
test_chaos.py, test_liveness.py). :func:`install` applies them once per process.

1. **Rewind to a committed offset of 0.** During a rebalance Faust's fetcher can take records
   from aiokafka (which advances aiokafka's fetch position) and then drop them: the flow stopped,
   the generation changed, or the partition was paused meanwhile (``Consumer.getmany``). Faust
   undoes that only through ``perform_seek`` -> ``seek_to_committed``, and aiokafka's
   ``seek_to_committed`` skips a committed offset of 0 (``if offset and offset > 0``;
   aio-libs/aiokafka#1003), the offset ``init_group_offsets`` commits for every partition not yet
   processed. Such a partition kept a position past records nobody processed: never fetched again
   (committed 0, lag forever), or its first records skipped once later ones arrived. The patch
   seeks every assigned partition that has a committed offset, 0 included, in one pass on the
   consumer thread; partitions without one (the changelogs) are left as they are.

2. **Flush means drained.** Before committing offsets Faust awaits ``producer.flush()``, whose
   ``ProducerBuffer.flush`` returns as soon as one 0.1 s wait for the next send times out, with
   messages still queued; and a message leaves the queue before it is handed to aiokafka. Table
   changelog writes go through that buffer, so offsets could be committed while the changelog
   records of their effects were still unsent: a SIGKILL then, with the local state wiped, lost
   them. The patch waits until the queue is empty and no message is between queue and aiokafka.

3. **Never commit over a record that was not processed** (the root cause of the chaos runs that
   ended with lag 0 and facts missing). Faust's fetcher drops records it has already taken from
   aiokafka, which has moved its fetch position past them, in three places: ``Consumer.getmany``
   (the flow stopped or the generation changed half-way through a batch, or the partition was
   not active), and ``_drain_messages``, whose hand-over of a record to the streams is abandoned
   when the flow is suspended meanwhile (``wait_first(callback(message), suspend_flow.wait())``
   cancels the callback, and the record's offset is still marked read). Nothing rewinds those
   records unless a ``seek_to_committed`` happens to follow. When the next record of the partition
   arrives, ``_drain_messages`` sees offsets jump and records the missing ones as a "gap"
   (meant for compacted topics and transaction markers), and ``_new_offset`` then commits over
   the gap as if it had been processed; its check for a hole at the head is off by one
   (``min(acked) - committed > 1``), and a committed offset of 0 is stored as ``None``, so a
   record at the committed offset itself was never protected. (The other way a batch got
   committed unprocessed, at a graceful stop, is in worker/app.py ``finish_or_hold``.)

   For the topics the worker reads (all append-only: ``cleanup.policy=delete``, no transactions,
   so their offsets have no holes) the patch keeps the exact next offset of every partition
   (0 included) and:
   - commits only a run of acked offsets that starts exactly at the committed offset: a record
     not acked holds every later offset back (``_new_offset``);
   - rewinds aiokafka to the first record ``getmany`` dropped, and to a record whose hand-over was
     abandoned (``_drain_messages``);
   - rewinds when a partition's next record is not the one expected (any other drop), once per
     hole; a hole that comes back after its rewind is a real one (retention deleted the records)
     and is stepped over, with a warning;
   - puts the acks of a commit that did not happen back (Faust took them off their list and
     recorded the offset as committed anyway: the partition was never committed again).
   Other topics (Faust's changelogs, compacted topics) keep Faust's behaviour.

4. **Table recovery never seeks to a negative offset.** ``Recovery._build_offsets`` takes a
   changelog's earliest offset minus one, and an earliest offset the broker did not give (-1)
   became -2: ``seek`` raised "Offset must be a positive integer", the recovery crashed and the
   worker exited 1 (seen in the chaos suite, on a worker started again after a kill with its
   state wiped); an offset of None did the same. Both now mean "from the beginning" (0), as -1
   already did.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

#: Full names of the topics whose offsets have no holes (append-only, no transactions): the worker
#: sets them (worker/app.py). Patch 3 applies to these only.
CONTIGUOUS_TOPICS: set[str] = set()

#: Rewinds done, by reason (``dropped``: getmany dropped fetched records; ``abandoned``: a hand-
#: over was abandoned; ``hole``: a partition's next record was not the one expected). Exported on
#: the worker's /metrics.
REWINDS: Counter[str] = Counter()

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    _patch_seek_to_committed()
    _patch_producer_buffer()
    _patch_contiguous_commits()
    _patch_recovery_seek()
    _installed = True


def _patch_seek_to_committed() -> None:
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    async def seek_to_committed(self: Any) -> dict:
        consumer = self._ensure_consumer()

        async def seek() -> dict:  # on the consumer thread's loop, like the original
            committed = {tp: await consumer.committed(tp) for tp in consumer.assignment()}
            assigned = consumer.assignment()
            for tp, offset in committed.items():
                if offset is not None and offset >= 0 and tp in assigned:
                    consumer.seek(tp, offset)
            return committed

        return await self.call_thread(seek)

    AIOKafkaConsumerThread.seek_to_committed = seek_to_committed  # type: ignore[method-assign]


FLUSH_TIMEOUT = 60.0  # a buffer that does not drain this long fails the commit (it is retried)


def _patch_producer_buffer() -> None:
    from faust.transport.producer import ProducerBuffer
    from mode.services import ServiceTask

    async def _handle_pending(self: Any) -> None:
        get_pending = self.pending.get
        send_pending = self._send_pending
        while not self.should_stop:
            msg = await get_pending()
            self.playlog_in_flight = getattr(self, "playlog_in_flight", 0) + 1
            try:
                await send_pending(msg)
            finally:
                self.playlog_in_flight -= 1
            self.message_sent.set()

    async def flush(self: Any) -> None:
        """Until every buffered message has been handed to the client (which the caller flushes)."""
        deadline = asyncio.get_running_loop().time() + FLUSH_TIMEOUT
        while self.size or getattr(self, "playlog_in_flight", 0):
            if self.state != "running" and self.size:
                raise RuntimeError("Cannot flush: Producer not Running")
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"producer buffer not drained within {FLUSH_TIMEOUT:.0f}s")
            self.message_sent.clear()
            try:
                await asyncio.wait_for(self.message_sent.wait(), timeout=0.1)
            except TimeoutError:
                continue  # still sending: keep waiting, a flush that returns early is the bug

    ProducerBuffer._handle_pending = ServiceTask(_handle_pending)  # type: ignore[assignment] # a mode task by name
    ProducerBuffer.flush = flush  # type: ignore[method-assign]


def _guarded(tp: Any) -> bool:
    return tp.topic in CONTIGUOUS_TOPICS


def _next(consumer: Any) -> dict:
    """The exact offset each guarded partition must deliver next (0 included)."""
    d = consumer.__dict__.get("_playlog_next")
    if d is None:
        d = consumer.__dict__["_playlog_next"] = {}
    return d


def _base(consumer: Any) -> dict:
    """The committed offset of each guarded partition as the broker has it (0 included)."""
    d = consumer.__dict__.get("_playlog_base")
    if d is None:
        d = consumer.__dict__["_playlog_base"] = {}
    return d


async def _rewind(consumer: Any, tp: Any, offset: int, reason: str) -> None:
    """Move aiokafka's fetch position back to ``offset`` so the records from there are fetched
    (and delivered) again; a partition no longer assigned is left alone (its next owner starts
    from the committed offset)."""
    try:
        if tp not in consumer.assignment():
            return
        await consumer.seek(tp, offset)
    except Exception as exc:  # noqa: BLE001 - a failed rewind is retried by the hole check
        log.warning("rewind of %s[%s] to %d failed: %r", tp.topic, tp.partition, offset, exc)
        return
    REWINDS[reason] += 1
    log.warning("%s[%s]: records from offset %d were fetched but not delivered (%s): fetched again",
                tp.topic, tp.partition, offset, reason)


def _strict_new_offset(consumer: Any, tp: Any) -> int | None:
    """The offset to commit for a guarded partition: the end of the run of acked offsets that
    starts exactly at the committed offset; None while the record at the committed offset is not
    acked (it is still being processed, or it will be delivered again)."""
    from faust.utils.functional import consecutive_numbers

    acked = consumer._acked[tp]
    if not acked:
        return None
    acked.sort()
    index = consumer._acked_index[tp]
    committed = consumer._committed_offset[tp]
    base = committed if committed is not None else _base(consumer).get(tp)
    if base is None:  # no committed offset known (a group that never committed): Faust's rule
        batch = next(consecutive_numbers(acked))
    else:
        stale = [o for o in acked if o < base]  # already committed
        if stale:
            del acked[: len(stale)]
            index.difference_update(stale)
        if not acked or acked[0] != base:
            return None
        batch = next(consecutive_numbers(acked))
    del acked[: len(batch)]
    index.difference_update(batch)
    return batch[-1] + 1


def _patch_contiguous_commits() -> None:
    from faust.transport.consumer import Consumer

    original_new_offset = Consumer._new_offset
    original_perform_seek = Consumer.perform_seek
    original_seek = Consumer.seek
    original_revoked = Consumer.on_partitions_revoked

    def _new_offset(self: Any, tp: Any) -> int | None:
        if _guarded(tp):
            return _strict_new_offset(self, tp)
        return original_new_offset(self, tp)

    async def perform_seek(self: Any) -> None:
        committed = await self.seek_to_committed()  # patched above: 0 included, all assigned
        read_offset = self._read_offset
        read_offset.update({tp: o if o is not None and o >= 0 else None for tp, o in committed.items()})
        self._committed_offset.update({tp: o if o else None for tp, o in committed.items() if o is not None})
        nxt, base = _next(self), _base(self)
        for tp, o in committed.items():
            if _guarded(tp) and o is not None and o >= 0:
                nxt[tp] = base[tp] = o

    perform_seek.playlog_original = original_perform_seek  # type: ignore[attr-defined]

    async def seek(self: Any, partition: Any, offset: int) -> None:
        await original_seek(self, partition, offset)
        if _guarded(partition):
            _next(self)[partition] = offset

    async def on_partitions_revoked(self: Any, revoked: set) -> None:
        nxt, base = _next(self), _base(self)
        for tp in revoked:
            nxt.pop(tp, None)
            base.pop(tp, None)
        await original_revoked(self, revoked)

    on_partitions_revoked.__wrapped__ = original_revoked  # type: ignore[attr-defined]

    async def getmany(self: Any, timeout: float) -> Any:
        """Faust's getmany (same order, same checks), but what it does not deliver is rewound."""
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None:
            return
        dropped: dict[Any, int] = {}

        def drop(tp: Any, offset: int) -> None:
            if _guarded(tp) and offset < dropped.get(tp, offset + 1):
                dropped[tp] = offset

        try:
            if self.should_stop:
                return
            records_it = iter(self.scheduler.iterate(records))
            to_message = self._to_message
            if self.flow_active:
                for tp, record in records_it:
                    if not self.flow_active or self.app.consumer_generation_id != generation_id:
                        drop(tp, record.offset)
                        for tp2, rec2 in records_it:
                            drop(tp2, rec2.offset)
                        break
                    if active_partitions is None or tp in active_partitions or tp in self._buffered_partitions:
                        self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                        yield tp, to_message(tp, record)
                    else:
                        drop(tp, record.offset)
            else:
                for tp, record in records_it:
                    drop(tp, record.offset)
                try:
                    await self.perform_seek()
                except Exception as ex:  # noqa: BLE001 - as Faust: logged, the next fetch retries
                    log.warning("exception performing seek when flow not active %r", ex)
                dropped.clear()  # rewound to the committed offsets
        finally:
            if not self.should_stop:
                for tp, offset in dropped.items():
                    expected = _next(self).get(tp)
                    if expected is None or expected <= offset:  # not already rewound further back
                        await _rewind(self, tp, offset if expected is None else expected, "dropped")

    async def _drain_messages(self: Any, fetcher: Any) -> None:
        """Faust's fetch loop; guarded partitions are delivered strictly in offset order."""
        from faust.transport.consumer import CONSUMER_FETCHING

        callback = self.callback
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        nxt = _next(self)
        base = _base(self)
        holes: dict[Any, int] = {}  # the hole each partition was last rewound for
        num_since_yield = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                ait = self.getmany(timeout=1.0)
                await self.sleep(0)
                if self.should_stop:
                    continue
                skip: set = set()  # partitions rewound during this batch: the rest comes again
                async for tp, message in ait:
                    num_since_yield += 1
                    if num_since_yield > 100:
                        await asyncio.sleep(0)
                        num_since_yield = 0
                    offset = message.offset
                    if _guarded(tp):
                        if tp in skip:
                            continue
                        expected = nxt.get(tp)
                        if expected is not None and offset < expected:
                            continue  # delivered already (a fetch from before a rewind)
                        if expected is not None and offset > expected:
                            if holes.get(tp) != expected:
                                holes[tp] = expected
                                skip.add(tp)
                                await _rewind(self, tp, expected, "hole")
                                continue
                            log.warning("%s[%s]: offsets %d..%d are not in the log (retention?): stepped over",
                                        tp.topic, tp.partition, expected, offset - 1)
                            if base.get(tp) == expected or self._committed_offset[tp] == expected:
                                base[tp] = offset
                                self._committed_offset[tp] = offset or None
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        handover = callback(message)
                        res = await self.wait_first(handover, self.suspend_flow.wait())
                        if handover not in res.done:  # abandoned: the record did not reach a stream
                            skip.add(tp)
                            if not self.should_stop:
                                await _rewind(self, tp, offset, "abandoned")
                            continue
                        nxt[tp] = offset + 1
                        holes.pop(tp, None)
                        set_read_offset(tp, offset)
                        continue
                    # any other topic: Faust's own logic
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset and acks_enabled_for(message.topic):
                            await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        await self.wait_first(callback(message), self.suspend_flow.wait())
                        set_read_offset(tp, offset)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    original_commit_offsets = Consumer._commit_offsets

    async def _commit_offsets(self: Any, offsets: Any, start_new_transaction: bool = True) -> bool:
        """Faust's commit; when it did not happen, the acks it consumed are put back.

        ``_filter_committable_offsets`` takes the acked offsets off their list before the commit,
        and ``_commit_offsets`` records the new offsets as committed whether or not the broker took
        them (aiokafka's "already rebalanced" answer returns False quietly): the partition then
        stayed at its old committed offset for good, its records processed but never committed
        again (seen: a wiped-state restart ending with lag 6 on one partition)."""
        before = {tp: self._committed_offset[tp] for tp in offsets if _guarded(tp)}
        floors = {tp: _base(self).get(tp) for tp in before}
        did = False
        try:
            did = await original_commit_offsets(self, offsets, start_new_transaction)
            return did
        finally:
            for tp, prior in before.items():
                if did:
                    _base(self)[tp] = offsets[tp]
                    continue
                self._committed_offset[tp] = prior
                lo = prior if prior is not None else floors[tp]
                if lo is not None and tp in self.assignment():
                    back = [o for o in range(lo, offsets[tp]) if o not in self._acked_index[tp]]
                    self._acked[tp].extend(back)
                    self._acked_index[tp].update(back)
                    log.warning("%s[%s]: commit of offset %d did not happen: kept for the next one",
                                tp.topic, tp.partition, offsets[tp])

    Consumer._commit_offsets = _commit_offsets  # type: ignore[method-assign]
    Consumer._new_offset = _new_offset  # type: ignore[method-assign]
    Consumer.perform_seek = perform_seek  # type: ignore[method-assign]
    Consumer.seek = seek  # type: ignore[method-assign]
    Consumer.on_partitions_revoked = on_partitions_revoked  # type: ignore[method-assign]
    Consumer.getmany = getmany  # type: ignore[method-assign]
    Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]


def set_contiguous_topics(names: Iterable[str]) -> None:
    CONTIGUOUS_TOPICS.clear()
    CONTIGUOUS_TOPICS.update(names)




def _patch_recovery_seek() -> None:
    from faust.tables.recovery import Recovery

    async def _seek_offsets(self: Any, consumer: Any, tps: Any, offsets: Any, title: str) -> None:
        new_offsets = {}
        for tp in tps:
            offset = offsets[tp]
            if offset is None or offset < -1:  # None: no offset known at all
                log.warning("%s recovery of %s[%s]: offset %s, read from the beginning", title, tp.topic,
                            tp.partition, offset)
                offset = 0
            new_offsets[tp] = max(offset, 0)
        await consumer.seek_wait(new_offsets)

    Recovery._seek_offsets = _seek_offsets  # type: ignore[method-assign]


STUCK_AFTER = 15.0  # seconds a partition may sit with records delivered past an unacked committed offset


async def rewind_stuck(consumer: Any, now: float, stuck_after: float = STUCK_AFTER) -> list[Any]:
    """Fetch again any guarded partition whose commit has not moved for ``stuck_after`` seconds
    while records past the committed offset were delivered and the record at the committed offset
    was never acked (its delivery or its ack got lost somewhere in Faust's machinery; seen once in
    a few dozen wiped-state restarts: lag 5 on one partition for good). Fetching again is harmless:
    every effect is idempotent. Returns the partitions rewound. The worker calls it on a timer."""
    seen = consumer.__dict__.setdefault("_playlog_stuck", {})
    nxt, base = _next(consumer), _base(consumer)
    out = []
    try:
        assigned = consumer.assignment()
    except Exception:  # noqa: BLE001 - not running yet
        return out
    for tp in list(nxt):
        if not _guarded(tp) or tp not in assigned:
            seen.pop(tp, None)
            continue
        committed = consumer._committed_offset[tp]
        committed = committed if committed is not None else base.get(tp)
        if committed is None or nxt[tp] <= committed or committed in consumer._acked_index[tp]:
            seen.pop(tp, None)
            continue
        state = (committed, nxt[tp])
        first = seen.get(tp)
        if first is None or first[0] != state:
            seen[tp] = (state, now)
            continue
        if now - first[1] >= stuck_after:
            seen.pop(tp, None)
            await _rewind(consumer, tp, committed, "stuck")
            out.append(tp)
    return out
