"""Per-key views the API reads: which fold, which key, which events, which view topic.

``apply_batch`` runs a batch of decoded events through a view's fold, reading and writing
states through a plain mapping (a Faust table in the worker, a dict in tests), and returns the
view documents to publish (the last per key) and the dead letters. No Kafka, no Faust here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

from processors import catalog, credentials, library, player, playlists, rights, users


@dataclass(frozen=True)
class ViewSpec:
    name: str  # table name and view topic suffix (view.<name>)
    source_topics: tuple[str, ...]  # catalog topic names (without prefix)
    event_types: frozenset[str]
    key: Callable[[dict], str]
    evolve: Callable[[Any, dict], tuple[Any, list[dict]]]
    to_view: Callable[[Any], dict]


def _catalog_view(state: dict) -> dict:
    doc = catalog.to_view(state)
    if state.get("kind") == "track":
        doc["first"] = state.get("first")  # (at, event_id, isrc) of its earliest ingest: replicas canonicalize ISRCs
    return doc


VIEWS: tuple[ViewSpec, ...] = (
    ViewSpec("catalog", ("catalog",), catalog.CATALOG_TYPES, catalog.catalog_key, catalog.evolve, _catalog_view),
    ViewSpec("rights", ("rights", "catalog"), rights.RIGHTS_TYPES, lambda e: e["track_id"], rights.evolve,
             rights.to_view),
    ViewSpec("users", ("users",), users.USER_TYPES, lambda e: e["user_id"], users.evolve, users.to_view),
    ViewSpec("player", ("player",), player.PLAYER_TYPES, lambda e: e["user_id"], player.evolve, player.to_view),
    ViewSpec("playlists", ("playlists",), playlists.PLAYLIST_TYPES, lambda e: e["playlist_id"], playlists.evolve,
             playlists.to_view),
    ViewSpec("library", ("library",), library.LIBRARY_TYPES, lambda e: e["user_id"], library.evolve, library.to_view),
    # the users topic brings the erasure requests (same key and partition count as the credentials topic)
    ViewSpec("credentials", ("credentials", "users"), credentials.CREDENTIAL_TYPES, lambda e: e["user_id"],
             credentials.evolve, credentials.to_view),
)


def dumps(state: Any) -> bytes:
    return orjson.dumps(state)


def loads(raw: bytes | None) -> Any:
    return None if raw is None else orjson.loads(raw)


def apply_batch(
    spec: ViewSpec,
    store: MutableMapping[str, bytes],
    items: Iterable[tuple[Any, dict]],
    write: Callable[[str, bytes, Any], None] | None = None,
) -> tuple[dict[str, tuple[Any, dict]], list[tuple[Any, str]]]:
    """Fold ``(source, event)`` items; returns ({key: (last source, view doc)}, [(source, reason)]).

    ``store`` maps key -> serialized state; it is written once per key that changed (through
    ``write(key, raw, source)`` when given: the worker writes its Faust table in the context of
    the last source event of that key, so the write lands in that key's changelog partition).
    """
    states: dict[str, Any] = {}
    changed: dict[str, Any] = {}
    dead: list[tuple[Any, str]] = []
    for source, event in items:
        if event["type"] not in spec.event_types:
            continue
        key = spec.key(event)
        if key not in states:
            states[key] = loads(store.get(key))
        before = states[key]
        after, outputs = spec.evolve(before, event)
        for out in outputs:
            if out.get("kind") == "dead_letter":
                dead.append((source, out["reason"]))
        if after is not None and after != before:
            states[key] = after
            changed[key] = source
    published = {}
    for key, source in changed.items():
        raw = dumps(states[key])
        if write is None:
            store[key] = raw
        else:
            write(key, raw, source)
        published[key] = (source, spec.to_view(states[key]))
    return published, dead
