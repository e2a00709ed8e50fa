"""A bounded LRU cache of whole segments in memory, sized in bytes, counting hits and misses.

Values are opaque to the cache (the CDN stores immutable segment objects: segments never change
once stored under a file id); each is put with its size in bytes. An entry larger than
``max_item_bytes`` (default: a quarter of the budget) is never admitted, so one huge object cannot
flush the cache. Evicting only drops the cache's reference: a reader still holding the value
(a response in flight) keeps it alive until it is done.

``purge(predicate)`` drops every entry whose key matches (the CDN purges the segments of renditions
that were taken down); purged entries are counted apart from evictions.

Not thread-safe: the CDN uses it from its single event loop.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class EdgeCache:
    """LRU by bytes. ``get`` counts a hit or a miss; ``put`` evicts least recently used entries."""

    def __init__(self, budget_bytes: int, max_item_bytes: int | None = None):
        if budget_bytes < 0:
            raise ValueError("cache budget must be >= 0 bytes")
        self.budget_bytes = budget_bytes
        if max_item_bytes is None:
            max_item_bytes = budget_bytes // 4
        self.max_item_bytes = min(max_item_bytes, budget_bytes)
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self.size_bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.purged = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def get(self, key: Hashable) -> Any | None:
        """The value (now most recently used) or None; counts a hit or a miss."""
        item = self._entries.get(key)
        if item is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return item[0]

    def admits(self, size: int) -> bool:
        return 0 <= size <= self.max_item_bytes

    def put(self, key: Hashable, value: Any, size: int) -> bool:
        """Insert (or replace) ``key``; False when an entry of ``size`` bytes is not admitted."""
        if not self.admits(size):
            return False
        old = self._entries.pop(key, None)
        if old is not None:
            self.size_bytes -= old[1]
        self._entries[key] = (value, size)
        self.size_bytes += size
        while self.size_bytes > self.budget_bytes:
            _, (_, evicted_size) = self._entries.popitem(last=False)
            self.size_bytes -= evicted_size
            self.evictions += 1
        return True

    def purge(self, predicate: Callable[[Hashable], bool]) -> int:
        """Drop every entry whose key satisfies ``predicate``; returns how many were dropped."""
        doomed = [key for key in self._entries if predicate(key)]
        for key in doomed:
            _, size = self._entries.pop(key)
            self.size_bytes -= size
        self.purged += len(doomed)
        return len(doomed)

    @property
    def hit_ratio(self) -> float:
        """hits / (hits + misses), 0.0 before any lookup."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0
