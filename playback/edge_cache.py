"""A bounded LRU cache of whole segments in memory, sized in bytes, counting hits and misses.

Values are immutable ``bytes`` (segments never change once stored under a file id), so a reader
can serve slices of them as zero-copy ``memoryview``s. An entry larger than ``max_item_bytes``
(default: a quarter of the budget) is never admitted, so one huge object cannot flush the cache.

Not thread-safe: the CDN uses it from its single event loop.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """One cached object: its bytes and the metadata served with it."""

    data: bytes
    etag: str
    content_type: str


class EdgeCache:
    """LRU by bytes. ``get`` counts a hit or a miss; ``put`` evicts least recently used entries."""

    def __init__(self, budget_bytes: int, max_item_bytes: int | None = None):
        if budget_bytes < 0:
            raise ValueError("cache budget must be >= 0 bytes")
        self.budget_bytes = budget_bytes
        self.max_item_bytes = budget_bytes // 4 if max_item_bytes is None else min(max_item_bytes, budget_bytes)
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self.size_bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def get(self, key: Hashable) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def admits(self, size: int) -> bool:
        return size <= self.max_item_bytes

    def put(self, key: Hashable, entry: Entry) -> bool:
        """Insert (or replace) ``key``; False when the entry is too large to be admitted."""
        size = len(entry.data)
        if not self.admits(size):
            return False
        old = self._entries.pop(key, None)
        if old is not None:
            self.size_bytes -= len(old.data)
        self._entries[key] = entry
        self.size_bytes += size
        while self.size_bytes > self.budget_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.size_bytes -= len(evicted.data)
            self.evictions += 1
        return True

    @property
    def hit_ratio(self) -> float:
        """hits / (hits + misses), 0.0 before any lookup."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0
