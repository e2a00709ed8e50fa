"""Catalog views: artists, albums, tracks (renditions, takedowns), ISRC canonicalization, search documents.

Two folds live here:

* :func:`evolve` -- the per-entity fold, keyed by :func:`catalog_key` (``artist:<id>``, ``album:<id>``,
  ``track:<id>``; the catalog topic is keyed by track_id or the entity's own id, and the prefix keeps
  the three id spaces apart in one table). States are plain JSON-able dicts.
* :class:`CatalogIndex` -- the small *global* fold over every ``track.ingested`` that resolves an upload
  id to its canonical id (events.md: the canonical id of an ISRC is the ``track_id`` of the earliest
  ``track.ingested`` carrying that ISRC, by (occurred_at, event_id); a track's ISRC is the one of its own
  earliest ``track.ingested``).

Idempotency and order: every piece of state is either "the latest by (occurred_at, event_id)", "the
earliest by (occurred_at, event_id)" or a map keyed by event_id / file_id holding the latest, so a
repeated event_id changes nothing and any arrival order of the same events gives the same state. A fold
call that changes nothing returns no outputs.

Outputs (records for downstream topics):

* ``{"kind": "view", "key": <catalog_key>, "view": <to_view(state)>}`` whenever the document changed
  (publish on the compacted catalog view topic under ``key``);
* ``{"kind": "dead_letter", "reason": str, "event": event}`` for an event this fold cannot take;
* from :class:`CatalogIndex`: ``{"kind": "canonical", "track_id": t, "canonical_id": c}`` for every
  upload whose resolution appeared or changed (publish on a compacted alias topic keyed by ``t``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

CATALOG_TYPES = frozenset(
    {"artist.ingested", "album.ingested", "track.ingested", "audio.encoded", "track.taken_down"}
)
TRACK_TYPES = frozenset({"track.ingested", "audio.encoded", "track.taken_down"})

_TRACK_FIELDS = (
    "isrc",
    "title",
    "album_id",
    "artist_ids",
    "duration_ms",
    "genres",
    "explicit",
    "distributor",
    "rightsholders",
)
_RENDITION_FIELDS = (
    "file_id",
    "codec",
    "container",
    "bitrate_kbps",
    "sample_rate_hz",
    "segment_ms",
    "segment_count",
    "byte_size",
    "storage_key",
    "loudness_lufs",
    "true_peak_dbtp",
)

#: content features of the master carried by audio.encoded (optional fields, ingest/features.py)
_FEATURE_FIELDS = ("tempo_bpm", "energy")

State = dict[str, Any]
Outputs = list[dict[str, Any]]


def order_key(event_or_entry: Mapping[str, Any]) -> tuple[int, str]:
    """The (occurred_at, event_id) order of royalties.md "Conventions" (entries store it as at/event_id)."""
    if "occurred_at" in event_or_entry:
        return (event_or_entry["occurred_at"], event_or_entry["event_id"])
    return (event_or_entry["at"], event_or_entry["event_id"])


def dead_letter(event: Mapping[str, Any], reason: str) -> dict[str, Any]:
    return {"kind": "dead_letter", "reason": reason, "event": dict(event)}


def catalog_key(event: Mapping[str, Any]) -> str:
    """The state key of a catalog event: ``artist:<artist_id>``, ``album:<album_id>`` or ``track:<track_id>``.

    Raises ValueError for an event that is not a catalog event.
    """
    etype = event.get("type")
    if etype == "artist.ingested":
        return f"artist:{event['artist_id']}"
    if etype == "album.ingested":
        return f"album:{event['album_id']}"
    if etype in TRACK_TYPES:
        return f"track:{event['track_id']}"
    raise ValueError(f"not a catalog event: {etype!r}")


# --------------------------------------------------------------------------------------------------
# per-entity fold


def evolve(state: State | None, event: Mapping[str, Any]) -> tuple[State | None, Outputs]:
    """Fold one catalog event into the state of its entity (key: :func:`catalog_key`).

    Artists and albums: the latest ``*.ingested`` by (occurred_at, event_id) is the document.
    Tracks: see :func:`evolve_track`. The input state is never mutated.
    """
    etype = event.get("type")
    if etype == "artist.ingested":
        return _evolve_latest(state, event, "artist", "artist_id", ("name", "genres"))
    if etype == "album.ingested":
        return _evolve_latest(
            state, event, "album", "album_id", ("title", "artist_ids", "release_date", "label", "artwork_uri")
        )
    if etype in TRACK_TYPES:
        return evolve_track(state, event)
    return state, [dead_letter(event, f"the catalog fold does not take {etype!r} events")]


def _evolve_latest(
    state: State | None, event: Mapping[str, Any], kind: str, id_field: str, fields: tuple[str, ...]
) -> tuple[State | None, Outputs]:
    entity_id = event[id_field]
    if state is not None and (state.get("kind") != kind or state.get(id_field) != entity_id):
        return state, [
            dead_letter(event, f"{kind} event for {entity_id!r} reached the state of another entity")
        ]
    if state is not None and order_key(state) >= order_key(event):
        return state, []
    new = {"kind": kind, id_field: entity_id, "at": event["occurred_at"], "event_id": event["event_id"]}
    for f in fields:
        value = event[f]
        new[f] = list(value) if isinstance(value, list) else value
    return new, [_view_output(new)]


def new_track_state(track_id: str) -> State:
    """An empty track state (no ingestion seen yet)."""
    return {
        "kind": "track",
        "track_id": track_id,
        "first": None,
        "latest": None,
        "renditions": {},
        "takedowns": {},
    }


def evolve_track(state: State | None, event: Mapping[str, Any]) -> tuple[State, Outputs]:
    """Fold ``track.ingested`` / ``audio.encoded`` / ``track.taken_down`` into one upload's state.

    State (key ``track:<track_id>``)::

        {"kind": "track", "track_id": str,
         "first":  {"at", "event_id", "isrc"} | None,      # earliest track.ingested: fixes the ISRC
         "latest": {"at", "event_id", <track.ingested fields>} | None,   # latest: the metadata
         "renditions": {file_id: {"at", "event_id", <audio.encoded fields>}},  # latest per file_id
         "takedowns": {event_id: {"at", "territories", "reason"}}}

    Renditions and takedowns may arrive before the ingestion (the state then exists with
    ``latest = None``; the view says ``ingested: false``).
    """
    etype = event.get("type")
    track_id = event["track_id"]
    if state is None:
        state = new_track_state(track_id)
    elif state.get("kind") != "track" or state.get("track_id") != track_id:
        return state, [
            dead_letter(event, f"track event for {track_id!r} reached the state of another entity")
        ]
    new = dict(state)
    if etype == "track.ingested":
        at, eid = event["occurred_at"], event["event_id"]
        first, latest = state["first"], state["latest"]
        if first is None or (at, eid) < order_key(first):
            new["first"] = {"at": at, "event_id": eid, "isrc": event["isrc"]}
        if latest is None or (at, eid) > order_key(latest):
            doc = {"at": at, "event_id": eid}
            for f in _TRACK_FIELDS:
                doc[f] = event[f]
            doc["artist_ids"] = list(event["artist_ids"])
            doc["genres"] = list(event["genres"])
            doc["rightsholders"] = [dict(r) for r in event["rightsholders"]]
            new["latest"] = doc
    elif etype == "audio.encoded":
        file_id = event["file_id"]
        old = state["renditions"].get(file_id)
        if old is None or order_key(event) > order_key(old):
            rendition = {"at": event["occurred_at"], "event_id": event["event_id"]}
            for f in _RENDITION_FIELDS:
                rendition[f] = event[f]
            for f in _FEATURE_FIELDS:  # optional (audio.encoded v2): kept only when measured
                if event.get(f) is not None:
                    rendition[f] = event[f]
            new["renditions"] = {**state["renditions"], file_id: rendition}
    elif etype == "track.taken_down":
        eid = event["event_id"]
        if eid not in state["takedowns"]:
            takedown = {
                "at": event["occurred_at"],
                "territories": list(event["territories"]),
                "reason": event["reason"],
            }
            new["takedowns"] = {**state["takedowns"], eid: takedown}
    else:
        return state, [dead_letter(event, f"the track fold does not take {etype!r} events")]
    if new == state:
        return state, []
    return new, [_view_output(new)]


def _view_output(state: State) -> dict[str, Any]:
    return {"kind": "view", "key": state_key(state), "view": to_view(state)}


def state_key(state: State) -> str:
    """The :func:`catalog_key` a state lives under."""
    kind = state["kind"]
    return f"{kind}:{state[kind + '_id']}"


def isrc_of(state: State) -> str | None:
    """The upload's ISRC: the one of its earliest ``track.ingested`` (None before any ingestion)."""
    return state["first"]["isrc"] if state.get("first") else None


def ladder(state: State) -> list[dict[str, Any]]:
    """The encode ladder of one upload, sorted by (codec, bitrate_kbps, file_id); the view's rungs."""
    rungs = [{f: r[f] for f in _RENDITION_FIELDS} for r in state.get("renditions", {}).values()]
    return sorted(rungs, key=lambda r: (r["codec"], r["bitrate_kbps"], r["file_id"]))


def best_ladder(
    canonical_doc: Mapping[str, Any] | None, member_docs: Iterable[Mapping[str, Any]] = ()
) -> list:
    """The ladder to stream a logical track from: the canonical upload's own ladder, else the ladder of
    the first other upload (by track_id) that has one; [] when none is encoded yet. Takes
    :func:`to_view` documents."""
    if canonical_doc and canonical_doc.get("ladder"):
        return list(canonical_doc["ladder"])
    for doc in sorted(member_docs, key=lambda d: d["track_id"]):
        if doc.get("ladder"):
            return list(doc["ladder"])
    return []


def audio_features(state: State) -> dict[str, Any] | None:
    """``{"tempo_bpm", "energy", "loudness_lufs"}`` of the upload, read from one rendition: the
    highest-bitrate one among those that carry measured features (else among all; ties by codec,
    then file_id), since its loudness is the closest to the master's; None before any rendition.
    ``tempo_bpm`` / ``energy`` are None when ingest did not measure them (events before v2)."""
    rungs = list(state.get("renditions", {}).values())
    if not rungs:
        return None
    best = min(rungs, key=lambda r: (r.get("energy") is None, -r["bitrate_kbps"], r["codec"], r["file_id"]))
    return {"tempo_bpm": best.get("tempo_bpm"), "energy": best.get("energy"), "loudness_lufs": best["loudness_lufs"]}


def takedowns(state: State) -> list[dict[str, Any]]:
    """The upload's takedowns ``{"at", "event_id", "territories", "reason"}`` ordered by (at, event_id)."""
    items = [
        {"at": t["at"], "event_id": eid, "territories": t["territories"], "reason": t["reason"]}
        for eid, t in state.get("takedowns", {}).items()
    ]
    return sorted(items, key=order_key)


def to_view(state: State) -> dict[str, Any]:
    """The JSON-able document the API reads for one catalog entity.

    Track documents: ``{"kind": "track", "track_id", "ingested": bool, "isrc", "title", "album_id",
    "artist_ids", "duration_ms", "genres", "explicit", "distributor", "rightsholders", "ladder": [...],
    "takedowns": [...], "audio_features": {"tempo_bpm", "energy", "loudness_lufs"} | None}`` (metadata
    keys are None / empty while ``ingested`` is false; :func:`audio_features`).
    Artist / album documents are their latest ingestion's fields plus ``kind`` and the id.
    """
    kind = state["kind"]
    if kind != "track":
        return {k: v for k, v in state.items() if k not in ("at", "event_id")}
    latest = state.get("latest")
    doc: dict[str, Any] = {"kind": "track", "track_id": state["track_id"], "ingested": latest is not None}
    for f in _TRACK_FIELDS:
        doc[f] = latest[f] if latest else None
    if latest is None:
        doc["artist_ids"], doc["genres"], doc["rightsholders"] = [], [], []
    doc["isrc"] = isrc_of(state)
    doc["ladder"] = ladder(state)
    doc["takedowns"] = takedowns(state)
    doc["audio_features"] = audio_features(state)
    return doc


# --------------------------------------------------------------------------------------------------
# search documents (joins of the per-entity documents; search itself lives elsewhere)


def track_search_document(
    track: Mapping[str, Any],
    *,
    canonical_id: str,
    aliases: Iterable[str] = (),
    artists: Mapping[str, Mapping[str, Any]] | None = None,
    albums: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The search document of a logical track, from the canonical upload's document (:func:`to_view`).

    ``artists`` / ``albums`` map ids to artist / album documents; missing ones are skipped (their
    names are simply absent until they are ingested). Fields: id (canonical), title, isrc,
    artist_ids, artist_names, album_id, album_title, release_date (the album's), aliases (sorted,
    without the canonical id), genres, explicit, duration_ms.
    """
    artists = artists or {}
    albums = albums or {}
    artist_ids = list(track.get("artist_ids") or [])
    album = albums.get(track.get("album_id") or "")
    return {
        "id": canonical_id,
        "title": track.get("title"),
        "isrc": track.get("isrc"),
        "artist_ids": artist_ids,
        "artist_names": [artists[a]["name"] for a in artist_ids if a in artists],
        "album_id": track.get("album_id"),
        "album_title": album["title"] if album else None,
        "release_date": album.get("release_date") if album else None,
        "aliases": sorted({a for a in aliases if a != canonical_id}),
        "genres": list(track.get("genres") or []),
        "explicit": track.get("explicit"),
        "duration_ms": track.get("duration_ms"),
    }


def artist_search_document(artist: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": artist["artist_id"], "name": artist["name"], "genres": list(artist["genres"])}


def album_search_document(
    album: Mapping[str, Any], artists: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    artists = artists or {}
    return {
        "id": album["album_id"],
        "title": album["title"],
        "artist_ids": list(album["artist_ids"]),
        "artist_names": [artists[a]["name"] for a in album["artist_ids"] if a in artists],
        "release_date": album["release_date"],
        "label": album["label"],
    }


# --------------------------------------------------------------------------------------------------
# the global alias -> canonical index


class CatalogIndex:
    """Global fold over ``track.ingested`` resolving any upload id to its canonical id.

    State (plain data, :meth:`to_dict` / :meth:`from_dict`):

    * ``first``: track_id -> [occurred_at, event_id, isrc] of the track's earliest ingestion;
    * ``canon``: isrc -> [occurred_at, event_id, track_id] of the earliest ingestion carrying the ISRC.

    Both are minima by (occurred_at, event_id), so the index is independent of arrival order and
    duplicates. Derived lookups (tracks per ISRC, ISRCs per canonical id) are rebuilt, never stored.
    The index updates itself in place (it is the read model every worker holds whole; copying it
    per event would be quadratic); :meth:`evolve` has no other effect and reads no clock.
    """

    def __init__(self) -> None:
        self.first: dict[str, tuple[int, str, str]] = {}
        self.canon: dict[str, tuple[int, str, str]] = {}
        self._by_isrc: dict[str, set[str]] = {}  # isrc -> tracks whose own ISRC it is
        self._isrcs_of_canon: dict[str, set[str]] = {}  # canonical id -> ISRCs it is canonical for

    def evolve(self, event: Mapping[str, Any]) -> Outputs:
        """Take one catalog event (others than ``track.ingested`` are ignored: the catalog topic carries
        them too). Returns ``{"kind": "canonical", "track_id", "canonical_id"}`` for each upload whose
        canonical id appeared or changed."""
        if event.get("type") != "track.ingested":
            return []
        track_id, isrc = event["track_id"], event["isrc"]
        key = (event["occurred_at"], event["event_id"])
        old_first = self.first.get(track_id)
        affected = {track_id, *self._by_isrc.get(isrc, ())}
        if old_first is not None:
            affected |= self._by_isrc.get(old_first[2], set())
        before = {t: self.canonical_id(t) for t in affected}

        if old_first is None or key < old_first[:2]:
            if old_first is not None:
                self._by_isrc[old_first[2]].discard(track_id)
            self.first[track_id] = (*key, isrc)
            self._by_isrc.setdefault(isrc, set()).add(track_id)
        old_canon = self.canon.get(isrc)
        if old_canon is None or key < old_canon[:2]:
            if old_canon is not None:
                self._isrcs_of_canon[old_canon[2]].discard(isrc)
            self.canon[isrc] = (*key, track_id)
            self._isrcs_of_canon.setdefault(track_id, set()).add(isrc)

        outputs = []
        for t in sorted(affected):
            after = self.canonical_id(t)
            if after is not None and after != before[t]:
                outputs.append({"kind": "canonical", "track_id": t, "canonical_id": after})
        return outputs

    def canonical_id(self, track_id: str) -> str | None:
        """The canonical id of an upload (itself when it is canonical); None for an unknown track."""
        first = self.first.get(track_id)
        if first is None:
            return None
        return self.canon[first[2]][2]

    def members(self, canonical_id: str) -> list[str]:
        """All upload ids resolving to ``canonical_id`` (itself included when known), sorted."""
        out: set[str] = set()
        for isrc in self._isrcs_of_canon.get(canonical_id, ()):
            out |= self._by_isrc.get(isrc, set())
        return sorted(t for t in out if self.canonical_id(t) == canonical_id)

    def aliases(self, canonical_id: str) -> list[str]:
        """The non-canonical uploads of a logical track, sorted."""
        return [t for t in self.members(canonical_id) if t != canonical_id]

    def isrc_of(self, track_id: str) -> str | None:
        first = self.first.get(track_id)
        return first[2] if first else None

    def canonical_ids(self) -> list[str]:
        """Every canonical id that is the canonical id of some known upload, sorted."""
        return sorted({self.canonical_id(t) for t in self.first})  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        return {
            "first": {t: list(v) for t, v in self.first.items()},
            "canon": {i: list(v) for i, v in self.canon.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CatalogIndex:
        index = cls()
        for t, (at, eid, isrc) in data.get("first", {}).items():
            index.first[t] = (at, eid, isrc)
            index._by_isrc.setdefault(isrc, set()).add(t)
        for isrc, (at, eid, t) in data.get("canon", {}).items():
            index.canon[isrc] = (at, eid, t)
            index._isrcs_of_canon.setdefault(t, set()).add(isrc)
        return index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CatalogIndex) and self.first == other.first and self.canon == other.canon

    __hash__ = None  # type: ignore[assignment]
