"""Where produced events go: Kafka, or a JSON Lines file (``--emit FILE.jsonl``).

Every verb that produces events takes an :class:`EventSink`, so pipelines can run offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Protocol

import orjson

from schemas.codec import Codec, default_codec


class EventSink(Protocol):
    def emit(self, event: dict) -> None:
        """Send one (valid, in-memory) event."""

    def close(self) -> None:
        """Flush everything; raise if any event could not be delivered."""


class JsonlSink:
    """Appends events in the JSON Lines interchange form to a file ("-" = stdout)."""

    def __init__(self, path: str | Path, codec: Codec | None = None, append: bool = False):
        self.codec = codec or default_codec()
        self.count = 0
        self._own = str(path) != "-"
        if self._own:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._fh: IO[bytes] = open(path, "ab" if append else "wb")  # noqa: SIM115
        else:
            import sys

            self._fh = sys.stdout.buffer

    def emit(self, event: dict) -> None:
        self._fh.write(orjson.dumps(self.codec.to_json(event)) + b"\n")
        self.count += 1

    def close(self) -> None:
        self._fh.flush()
        if self._own:
            self._fh.close()

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
