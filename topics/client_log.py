"""The logger handed to librdkafka (confluent-kafka's ``logger`` setting), quiet about repeats.

While a broker is away, librdkafka logs every failed connect (``FAIL ... Connection refused``), up to
20 lines a second per client; an outage of a minute buried everything else an operator (or a failing
test's log tail) needed to see. :func:`client_logger` returns ``<name>.rdkafka`` with a
:class:`RepeatFilter`: a message is logged the first time, then at most once per ``every`` seconds
with the number of repeats held back (messages that differ only in numbers count as the same).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

_NUMBERS = re.compile(r"\d+")


class RepeatFilter(logging.Filter):
    """Let a message through once per ``every`` seconds; say how many repeats were held back."""

    def __init__(self, every: float = 30.0, clock: Callable[[], float] = time.monotonic, max_keys: int = 1000):
        super().__init__()
        self.every = every
        self.clock = clock
        self.max_keys = max_keys
        self._seen: dict[str, tuple[float, int]] = {}  # shape -> (last let through, held back since)
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        shape = _NUMBERS.sub("#", record.getMessage())
        now = self.clock()
        with self._lock:
            last = self._seen.get(shape)
            if last is not None and now - last[0] < self.every:
                self._seen[shape] = (last[0], last[1] + 1)
                return False
            if len(self._seen) >= self.max_keys:
                self._seen.clear()
            self._seen[shape] = (now, 0)
        if last is not None and last[1]:
            record.msg = f"{record.getMessage()} ({last[1]} like it in the last {now - last[0]:.0f}s not shown)"
            record.args = None
        return True


def client_logger(name: str, every: float = 30.0) -> logging.Logger:
    """``logging.getLogger(name + ".rdkafka")`` with one :class:`RepeatFilter` (added once)."""
    logger = logging.getLogger(f"{name}.rdkafka")
    if not any(isinstance(f, RepeatFilter) for f in logger.filters):
        logger.addFilter(RepeatFilter(every))
    return logger
