"""The topic catalog (``topics/topic_catalog.json``) as data, and the event type -> topic/key routing.

Events are keyed as spec/events.md says so that per-entity order holds: catalog and rights by
track (artists/albums by their own id), users/listening/player by user, playlists by playlist,
finance by ``period|country|product``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CATALOG_PATH = Path(__file__).resolve().parent / "topic_catalog.json"


@dataclass(frozen=True)
class TopicSpec:
    name: str  # without the prefix
    partitions: int
    key: str
    cleanup_policy: str
    retention_ms: int
    event_types: tuple[str, ...]
    doc: str
    derived: bool = False

    def full_name(self, prefix: str) -> str:
        return f"{prefix}{self.name}"

    def config(self) -> dict[str, str]:
        cfg = {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}
        if self.cleanup_policy == "compact":
            cfg["min.cleanable.dirty.ratio"] = "0.1"
        return cfg


@lru_cache(maxsize=1)
def load_catalog(path: Path = CATALOG_PATH) -> tuple[TopicSpec, ...]:
    rows = json.loads(Path(path).read_text())["topics"]
    return tuple(
        TopicSpec(
            name=r["name"],
            partitions=r["partitions"],
            key=r["key"],
            cleanup_policy=r["cleanup_policy"],
            retention_ms=r["retention_ms"],
            event_types=tuple(r["event_types"]),
            doc=r["doc"],
            derived=r.get("derived", False),
        )
        for r in rows
    )


def topic_spec(name: str) -> TopicSpec:
    for t in load_catalog():
        if t.name == name:
            return t
    raise KeyError(name)


@lru_cache(maxsize=1)
def _routes() -> dict[str, str]:
    return {et: t.name for t in load_catalog() for et in t.event_types}


def topic_of(event_type: str) -> str:
    """Topic name (without prefix) that carries an event type."""
    return _routes()[event_type]


_KEY_FIELD = {
    "artist.ingested": "artist_id",
    "album.ingested": "album_id",
}


def key_of(event: dict) -> str:
    """The partition key of an event (events.md)."""
    et = event["type"]
    if et == "royalty.pool_declared":
        return f"{event['period']}|{event['country']}|{event['product']}"
    field = _KEY_FIELD.get(et)
    if field is None:
        topic = topic_of(et)
        field = {
            "catalog": "track_id",
            "rights": "track_id",
            "users": "user_id",
            "listening": "user_id",
            "player": "user_id",
            "playlists": "playlist_id",
        }[topic]
    return event[field]


def source_topics() -> list[TopicSpec]:
    """Topics that carry source events (not derived views)."""
    return [t for t in load_catalog() if not t.derived]
