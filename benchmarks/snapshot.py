"""``playlog bench snapshot``: encoding and decoding a royalty view's checkpoint, and how long the
other threads of the worker wait meanwhile.

For each N: a :class:`~processors.batches.RoyaltyView` of N synthetic plays (those of
``playlog bench recovery``, folded as the royalty agents fold them), then

- **format 2** (processors/snapshot.py, what checkpoints hold): ``to_snapshot`` (every day
  encoded: the first checkpoint), ``to_snapshot`` again with nothing changed (a quiet
  checkpoint), ``from_snapshot`` (decoded a segment at a time, the GC off, as worker/checkpoint.py
  does);
- **baseline, format 1** (one JSON document: what checkpoints held before), in the same run:
  ``to_snapshot_v1`` and ``from_snapshot`` of it with the GC on, as the worker loaded it before
  (without the zlib step the checkpoint added: a little in the baseline's favour);

each with the longest wait of a thread that wakes every millisecond (what Faust's consumer thread
sees while it must send heartbeats: the worker's session times out after 10 s). Pure CPU: no
broker. Times are wall seconds on this machine, whatever else it runs (the load average is
reported with them).
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable
from typing import Any


class _Ticker:
    """A thread waking every millisecond; the longest gap between two wakes since the last read."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        last = time.perf_counter()
        while not self.stop:
            time.sleep(0.001)
            now = time.perf_counter()
            self.gaps.append(now - last)
            last = now

    def longest(self) -> float:
        g = max(self.gaps, default=0.0)
        self.gaps.clear()
        return g


def _timed(ticker: _Ticker, fn: Callable[[], Any]) -> tuple[Any, float, float]:
    ticker.longest()
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, ticker.longest()


def run_one(n: int, tracks: int = 1000) -> dict:
    from benchmarks.recovery import play_records
    from processors.batches import RoyaltyView, unpack_facts
    from worker.checkpoint import no_gc_while_building

    out: dict = {"plays": n, "load_avg_at_start": os.getloadavg()[0]}
    ticker = _Ticker()
    try:
        view = RoyaltyView()
        t0 = time.perf_counter()
        with no_gc_while_building():
            for chunk in play_records(n, tracks):
                for _, rec in chunk:
                    view.apply_batch([(k, raw, None) for k, raw in unpack_facts(rec)])
        out["build_view_s"] = time.perf_counter() - t0
        ticker.longest()
        v2, out["format2 encode_s (first)"], out["format2 encode longest_thread_wait_s"] = _timed(ticker, view.to_snapshot)
        _, out["format2 encode_s (nothing changed)"], _ = _timed(ticker, view.to_snapshot)
        out["format2 MB"] = len(v2) / 1e6
        v1, out["baseline format1 encode_s"], out["baseline format1 encode longest_thread_wait_s"] = _timed(
            ticker, view.to_snapshot_v1)
        out["baseline format1 MB (uncompressed JSON)"] = len(v1) / 1e6
        del view
        gc.collect()

        def decode(raw: bytes, no_gc: bool) -> Callable[[], Any]:
            def run() -> Any:
                if not no_gc:
                    return RoyaltyView.from_snapshot(raw)
                with no_gc_while_building():
                    return RoyaltyView.from_snapshot(raw, pause=0.001)
            return run

        restored, out["format2 decode_s"], out["format2 decode longest_thread_wait_s"] = _timed(ticker, decode(v2, True))
        assert len(restored.state.plays) == n
        del restored
        gc.collect()
        # the baseline as the worker loaded checkpoints before: one document, the GC on
        restored, out["baseline format1 decode_s"], out["baseline format1 decode longest_thread_wait_s"] = _timed(
            ticker, decode(v1, False))
        assert len(restored.state.plays) == n
        out["ratio encode format1 / format2"] = out["baseline format1 encode_s"] / out["format2 encode_s (first)"]
        out["ratio decode format1 / format2"] = out["baseline format1 decode_s"] / out["format2 decode_s"]
        out["load_avg_at_end"] = os.getloadavg()[0]
    finally:
        ticker.stop = True
    return out


def run_snapshot(plays: list[int], tracks: int = 1000) -> dict:
    results: dict = {}
    for n in plays:
        for k, v in run_one(n, tracks).items():
            results[f"{n}.{k}"] = v
    return results
