"""The topic catalog (``topics/topic_catalog.json``) as data, and the event type -> topic/key routing.

Events are keyed as spec/events.md says so that per-entity order holds: catalog and rights by
track (artists/albums by their own id), users/listening/player/library/credentials by user, playlists
by playlist, finance by ``period|country|product``.

The catalog also says which event types belong on which topic: :func:`topic_rule` gives every
reader the ``(topic, allowed types)`` pair that ``schemas.validate`` checks a record against, so an
event produced to a topic it does not belong on is refused with one reason everywhere.
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
    max_message_bytes: int | None = None  # a topic whose records may outgrow the broker's default (1 MiB)
    retention_reason: str = ""  # why this retention (or compaction): every catalog topic states one
    delete_retention_ms: int | None = None  # compacted topics: how long a tombstone stays after compaction
    segment_ms: int | None = None  # roll segments this often: a busy compacted view gets compacted soon

    def full_name(self, prefix: str) -> str:
        return f"{prefix}{self.name}"

    def config(self) -> dict[str, str]:
        cfg = {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}
        if self.cleanup_policy == "compact":
            cfg["min.cleanable.dirty.ratio"] = "0.1"
        if self.delete_retention_ms is not None:
            cfg["delete.retention.ms"] = str(self.delete_retention_ms)
        if self.max_message_bytes:
            cfg["max.message.bytes"] = str(self.max_message_bytes)
        if self.segment_ms is not None:
            cfg["segment.ms"] = str(self.segment_ms)
        return cfg

    def retention_config(self) -> dict[str, str]:
        """The configs that say how long records stay: what ``playlog topics create`` sets on existing
        topics too (:func:`topics.admin.apply_retention`)."""
        keys = ("cleanup.policy", "retention.ms", "delete.retention.ms")
        return {k: v for k, v in self.config().items() if k in keys}


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
            max_message_bytes=r.get("max_message_bytes"),
            retention_reason=r["retention_reason"],
            delete_retention_ms=r.get("delete_retention_ms"),
            segment_ms=r.get("segment_ms"),
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
            "library": "user_id",
            "credentials": "user_id",
        }[topic]
    return event[field]


def event_types_on(name: str) -> frozenset[str] | None:
    """The event types a catalog topic (name without the prefix) carries; None for a topic the catalog
    does not know. Derived topics carry no events (an empty set)."""
    for t in load_catalog():
        if t.name == name:
            return frozenset(t.event_types)
    return None


@lru_cache(maxsize=4096)
def topic_rule(topic: str, prefix: str | None = None) -> tuple[str | None, frozenset[str] | None]:
    """``(catalog name, event types it carries)`` of a topic name as a reader sees it, for
    ``schemas.validate`` (``(None, None)``: a topic the catalog does not know, nothing to check).

    With ``prefix`` (the settings' topic prefix) the name is ``prefix + catalog name``; without it (or
    when the name does not start with it) the catalog name is the longest one the name ends with, so
    ``"playlog.listening"`` and ``"t1x2.listening"`` are both ``listening`` and ``"p.view.catalog"`` is
    ``view.catalog``, not ``catalog``."""
    names = [t.name for t in load_catalog()]
    if prefix is not None and topic.startswith(prefix) and topic[len(prefix):] in names:
        name: str | None = topic[len(prefix):]
    else:
        ends = [n for n in names if topic.endswith(n)]
        name = max(ends, key=len) if ends else None
    return (name, event_types_on(name)) if name is not None else (None, None)


def source_topics() -> list[TopicSpec]:
    """Topics that carry source events (not derived views)."""
    return [t for t in load_catalog() if not t.derived]
