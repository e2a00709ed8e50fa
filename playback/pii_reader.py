"""The API's reader of sealed personal fields (core/pii.py): opens them with the user's key from
``pii.keys``; a field whose key is gone (an erased user) reads as absent (None).

The keys are read from the topic on first use and again when a value names a kid not known yet, at
most every :data:`REFRESH_S` seconds (a new user's key is written before their first event, so a miss
is rare); a broker that cannot be read leaves the field absent, never the plaintext of another user.
"""

from __future__ import annotations

import logging
import threading
import time

from core import pii
from core.errors import PlaylogError
from core.settings import Settings, load

log = logging.getLogger(__name__)

REFRESH_S = 5.0


class PiiReader:
    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._keys: dict[tuple[str, str], bytes] = {}
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        from confluent_kafka import KafkaException

        from topics.pii_keys import read_keys

        self._read_at = time.monotonic()
        try:
            self._keys = read_keys(self._settings or load(), timeout=5.0)
        except (PlaylogError, KafkaException) as exc:  # e.g. metadata not answered: the fields read as absent
            log.warning("cannot read the PII keys: %s", exc)

    def lookup(self, user_id: str, kid: str) -> bytes | None:
        with self._lock:
            key = self._keys.get((user_id, kid))
            if key is None and (self._read_at is None or time.monotonic() - self._read_at >= REFRESH_S):
                self._refresh()
                key = self._keys.get((user_id, kid))
            return key

    def read(self, user_id: str, field: str, value: str | None) -> str | None:
        return pii.read_field(self.lookup, user_id, field, value)


_reader: PiiReader | None = None


def reader() -> PiiReader:
    """The process's reader (settings from the environment)."""
    global _reader
    if _reader is None:
        _reader = PiiReader()
    return _reader


def read(user_id: str, field: str, value: str | None) -> str | None:
    """A personal field as the API shows it: in clear when its key is at hand, else None."""
    if value is None or not pii.is_sealed(value):
        return value
    return reader().read(user_id, field, value)
