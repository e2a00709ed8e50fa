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
"""

from __future__ import annotations

import asyncio
from typing import Any

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    _patch_seek_to_committed()
    _patch_producer_buffer()
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
