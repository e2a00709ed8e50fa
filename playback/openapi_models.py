"""Typed request and response models of the playback API: the source of ``/openapi.json``'s component
schemas (playback/openapi.py turns them into OpenAPI 3.0 with :func:`components`).

TypedDicts, because the routes render plain dicts (playback/render.py): a key a response always carries is a
plain annotation (``required``), one it carries only sometimes is ``NotRequired``, a value that may be null is
``X | None`` (OpenAPI ``nullable``). Objects are open (no ``additionalProperties: false``), as Spotify's own
objects grow over time. ``TypeAdapter(Model).validate_python(body)`` checks a response against its model
(tests/unit/test_openapi_models.py does it on the routes' real answers).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import Field, TypeAdapter
from typing_extensions import TypedDict  # pydantic needs this TypedDict before Python 3.12

Percent = Annotated[int, Field(ge=0, le=100)]
NonNegative = Annotated[int, Field(ge=0)]
Uris = Annotated[list[str], Field(min_length=1, max_length=100)]


# --- errors ------------------------------------------------------------------------------------------


class ErrorBody(TypedDict):
    status: int
    message: str
    reason: NotRequired[str]


class Error(TypedDict):
    """The Spotify error shape of every /v1 failure."""

    error: ErrorBody


# --- catalog -----------------------------------------------------------------------------------------


class ArtistRef(TypedDict):
    id: str
    name: str | None
    type: Literal["artist"]
    uri: str
    href: str


class Artist(ArtistRef):
    genres: list[str]


class Album(TypedDict):
    id: str
    name: str | None
    type: Literal["album"]
    uri: str
    href: str
    artists: list[ArtistRef]
    release_date: NotRequired[str | None]
    label: NotRequired[str | None]
    images: NotRequired[list[Any]]


class TrackRestrictions(TypedDict):
    reason: str


class LinkedFrom(TypedDict):
    id: str
    type: str
    uri: str


class Track(TypedDict):
    id: str
    type: Literal["track"]
    uri: str
    href: str
    name: str | None
    artists: list[ArtistRef]
    album: Album | None
    duration_ms: int | None
    explicit: bool
    popularity: Percent
    is_playable: NotRequired[bool]
    external_ids: NotRequired[dict[str, Any]]
    genres: NotRequired[list[str]]
    restrictions: NotRequired[TrackRestrictions]
    has_audio: NotRequired[bool]
    linked_from: NotRequired[LinkedFrom]


class TrackRef(TypedDict):
    id: str
    type: Literal["track"]
    uri: str


class Page(TypedDict):
    """A Spotify paging object."""

    href: str
    items: list[Any]
    limit: int
    offset: int
    total: int
    next: str | None
    previous: str | None


class TrackSearchPage(Page):
    items: list[Track]  # type: ignore[misc]  # a narrower items type than Page's


class ArtistPage(Page):
    items: list[Artist]  # type: ignore[misc]


class AlbumPage(Page):
    items: list[Album]  # type: ignore[misc]


class TrackPage(Page):
    items: list[TrackRef]  # type: ignore[misc]


class SearchResult(TypedDict, total=False):
    """One page per requested type."""

    tracks: TrackSearchPage
    artists: ArtistPage
    albums: AlbumPage


class Tracks(TypedDict):
    tracks: list[Track | None]


class TopTracks(TypedDict):
    tracks: list[Track]


class Albums(TypedDict):
    albums: list[Album | None]


class Artists(TypedDict):
    artists: list[Artist | None]


# --- user, player ------------------------------------------------------------------------------------


class User(TypedDict):
    id: str
    type: Literal["user"]
    uri: str
    href: str
    display_name: str | None
    country: str | None
    product: str | None


class Device(TypedDict):
    id: str
    is_active: bool
    name: str | None
    type: str | None
    volume_percent: int | None


class Devices(TypedDict):
    devices: list[Device]


class Queue(TypedDict):
    currently_playing: TrackRef | None
    queue: list[TrackRef]


class CurrentlyPlaying(TypedDict):
    timestamp: int
    progress_ms: int
    is_playing: bool
    item: Track | None
    currently_playing_type: str


class PlaybackContext(TypedDict):
    uri: str


class PlaybackState(TypedDict):
    device: Device
    timestamp: int
    progress_ms: int
    is_playing: bool
    item: Track | None
    context: PlaybackContext | None
    currently_playing_type: str
    queue_position: int
    queue: list[str]
    repeat_state: str
    shuffle_state: bool


# --- streaming, events, home -------------------------------------------------------------------------


class Rung(TypedDict):
    file_id: str
    codec: str
    container: str
    bitrate_kbps: int
    sample_rate_hz: int
    segment_ms: int
    segment_count: int
    byte_size: int
    loudness_lufs: float
    true_peak_dbtp: float
    gain_db: float
    segments: list[str]


class ManifestLinkedFrom(TypedDict):
    id: str
    uri: str


class Manifest(TypedDict):
    track_id: str
    uri: str
    product: str
    target_lufs: float
    expires_at: int
    expires_at_iso: str
    rungs: list[Rung]
    linked_from: NotRequired[ManifestLinkedFrom]


class EventsAccepted(TypedDict):
    accepted: int


class RejectedEvent(TypedDict):
    index: int
    reason: str
    event_id: NotRequired[str | None]


class EventsRejected(TypedDict):
    error: ErrorBody
    accepted: int
    rejected: list[RejectedEvent]


class ShelfContext(TypedDict):
    kind: str
    ids: list[Any]


class Shelf(TypedDict):
    id: str
    title: str
    context: ShelfContext
    track_ids: list[str]
    items: list[Track]


class Home(TypedDict):
    country: str
    shelves: list[Shelf]


# --- playlists ---------------------------------------------------------------------------------------


class IdRef(TypedDict):
    id: str


class EntryTrack(TypedDict):
    id: str
    uri: str


class PlaylistTrack(TypedDict):
    added_at: str
    added_by: IdRef
    track: EntryTrack


class PlaylistTrackPage(Page):
    items: list[PlaylistTrack]  # type: ignore[misc]


class Playlist(TypedDict):
    id: str
    type: Literal["playlist"]
    uri: str
    href: str
    name: str
    public: bool
    collaborative: bool
    owner: IdRef
    snapshot_id: str
    tracks: PlaylistTrackPage


class Snapshot(TypedDict):
    snapshot_id: str


# --- request bodies ----------------------------------------------------------------------------------


class PlayOffset(TypedDict, total=False):
    position: NonNegative
    uri: str


class PlayRequest(TypedDict, total=False):
    uris: Uris
    context_uri: str
    offset: PlayOffset
    position_ms: NonNegative
    device_id: str


class TransferRequest(TypedDict):
    device_ids: Annotated[list[str], Field(min_length=1, max_length=1)]
    play: NotRequired[bool]


Batch = Annotated[list[dict[str, Any]], Field(min_length=1, max_length=1000)]


class EventsBatch(TypedDict):
    events: Batch


class CreatePlaylist(TypedDict):
    name: Annotated[str, Field(min_length=1, max_length=300)]
    public: NotRequired[bool]
    collaborative: NotRequired[bool]
    description: NotRequired[str]


class AddTracks(TypedDict):
    uris: Uris
    position: NotRequired[NonNegative]
    snapshot_id: NotRequired[str]


class UriRef(TypedDict):
    uri: str


class RemoveTracks(TypedDict):
    tracks: Annotated[list[UriRef], Field(min_length=1, max_length=100)]
    snapshot_id: NotRequired[str]


class RemoveItems(TypedDict):
    items: Annotated[list[UriRef], Field(min_length=1, max_length=100)]
    snapshot_id: NotRequired[str]


class ReorderTracks(TypedDict, total=False):
    range_start: NonNegative
    insert_before: NonNegative
    range_length: Annotated[int, Field(ge=1)]
    snapshot_id: str
    uris: list[str]


#: component name -> type (a TypedDict, or an alias for the bodies that are not one object)
MODELS: dict[str, Any] = {
    m.__name__: m for m in (
        Error, ArtistRef, Artist, Album, Track, Page, SearchResult, Device, TrackPage, AlbumPage, Devices, User,
        Queue, TrackRef, CurrentlyPlaying, PlaybackState, Rung, Manifest, EventsAccepted, EventsRejected, Shelf,
        Home, PlaylistTrack, Playlist, Snapshot, PlayRequest, TransferRequest, CreatePlaylist, AddTracks,
        RemoveTracks, RemoveItems, ReorderTracks, Tracks, TopTracks, Albums, Artists,
    )
}
MODELS["EventsRequest"] = EventsBatch | Batch  # {"events": [...]} or a bare array


# --- JSON Schema (pydantic) -> OpenAPI 3.0 -----------------------------------------------------------

REF_TEMPLATE = "#/components/schemas/{model}"


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null" and len(schema) == 1


def to_openapi30(node: Any) -> Any:
    """pydantic's JSON Schema (2020-12) -> OpenAPI 3.0.3: ``anyOf [X, null]`` -> ``X`` + ``nullable``
    (``allOf [$ref]`` + ``nullable`` for a reference), ``const`` -> a one-value ``enum``, no ``title``."""
    if isinstance(node, list):
        return [to_openapi30(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_openapi30(v) for k, v in node.items() if k not in ("title", "const", "properties")}
    if "properties" in node:
        out["properties"] = {k: to_openapi30(v) for k, v in node["properties"].items()}
    if "const" in node:
        out["enum"] = [node["const"]]
    options = node.get("anyOf")
    if options and any(_is_null(o) for o in options):
        rest = [to_openapi30(o) for o in options if not _is_null(o)]
        del out["anyOf"]
        if len(rest) == 1 and "$ref" not in rest[0]:
            out.update(rest[0])
        else:
            out["allOf" if len(rest) == 1 else "anyOf"] = rest
        out["nullable"] = True
    return out


def components() -> dict[str, Any]:
    """Every model's OpenAPI 3.0 schema by component name (nested TypedDicts become components of their
    own, by class name)."""
    out: dict[str, Any] = {}
    for name, model in MODELS.items():
        schema = TypeAdapter(model).json_schema(ref_template=REF_TEMPLATE, mode="serialization")
        defs = schema.pop("$defs", {})
        for def_name, def_schema in defs.items():
            out.setdefault(def_name, to_openapi30(def_schema))
        out[name] = to_openapi30(schema)
    return dict(sorted(out.items()))
