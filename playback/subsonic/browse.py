"""Browsing and searching (ID3 model): ``getArtists``, ``getArtist``, ``getAlbum``, ``getSong``,
``getAlbumList2``, ``getRandomSongs``, ``getGenres``, ``search3``.

Everything reads the replica (catalog, rights-free: Subsonic lists what exists; ``stream`` checks
rights), under its lock for one consistent answer.

- ``getArtists``: artists grouped by the first letter of their name without a leading article
  (:data:`IGNORED_ARTICLES`), ``#`` for anything but A-Z.
- ``getAlbumList2`` types: ``newest`` (release date, newest first), ``frequent`` and ``highest`` (the
  album's streams, most first: there are no ratings), ``recent`` (albums of the caller's latest plays),
  ``alphabeticalByName``, ``alphabeticalByArtist``, ``starred`` (the caller's), ``byYear``
  (``fromYear``..``toYear``, descending when ``fromYear > toYear``), ``byGenre`` (an album's genres are
  its tracks'), ``random``. ``size`` 1..500 (default 10), ``offset`` from 0.
- ``search3``: the API's tantivy index (typo-tolerant, popularity-boosted, as ``/v1/search``); an
  empty query (``query=``, also ``""`` as some clients send it, and ``*``) lists everything by id, page
  by page, which is how clients sync a whole library. Counts 0..500, offsets 0..1,000,000.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from playback.subsonic.context import Ctx, method
from playback.subsonic.objects import release_parts
from playback.subsonic.render import Code, SubsonicError
from processors import library as library_fold

IGNORED_ARTICLES = "The El La Los Las Le Les"
_ARTICLES = tuple(a.lower() + " " for a in IGNORED_ARTICLES.split())
MAX_SIZE = 500
MAX_OFFSET = 1_000_000
MAX_YEAR = 9999
ALBUM_LIST_TYPES = ("random", "newest", "highest", "frequent", "recent", "alphabeticalByName",
                    "alphabeticalByArtist", "starred", "byYear", "byGenre")


def sort_name(name: str) -> str:
    low = name.strip().lower()
    for article in _ARTICLES:
        if low.startswith(article) and len(low) > len(article):
            return low[len(article):]
    return low


def index_letter(name: str) -> str:
    first = sort_name(name)[:1].upper()
    return first if "A" <= first <= "Z" else "#"


def empty_query(query: str) -> bool:
    """True for what clients send to mean "everything": nothing, ``""`` or ``*``."""
    return query.strip().strip('"').strip("*").strip() == ""


@method("getArtists")
async def get_artists(ctx: Ctx) -> dict[str, Any]:
    objects = ctx.objects()
    with ctx.replica.lock:
        artists = [a for a in (objects.artist(i) for i in ctx.replica.artists) if a is not None]
    groups: dict[str, list[dict]] = {}
    for a in sorted(artists, key=lambda a: (sort_name(a["name"]), a["id"])):
        groups.setdefault(index_letter(a["name"]), []).append(a)
    index = [{"name": letter, "artist": groups[letter]} for letter in sorted(groups, key=lambda k: (k == "#", k))]
    return {"artists": {"ignoredArticles": IGNORED_ARTICLES, "index": index}}


def _one(ctx: Ctx, what: str, find: Callable[[Any, str], dict | None]) -> dict[str, Any]:
    """``{what: object}`` of the ``id`` parameter, or code 70 (not found)."""
    key = ctx.params.required("id")
    with ctx.replica.lock:
        found = find(ctx.objects(), key)
    if found is None:
        raise SubsonicError(Code.NOT_FOUND, f"{what.capitalize()} not found: {key[:80]}")
    return {what: found}


@method("getArtist")
async def get_artist(ctx: Ctx) -> dict[str, Any]:
    return _one(ctx, "artist", lambda objects, key: objects.artist(key, with_albums=True))


@method("getAlbum")
async def get_album(ctx: Ctx) -> dict[str, Any]:
    return _one(ctx, "album", lambda objects, key: objects.album(key, with_songs=True))


@method("getSong")
async def get_song(ctx: Ctx) -> dict[str, Any]:
    return _one(ctx, "song", lambda objects, key: objects.song(key))


def _album_streams(replica: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for canon, n in replica.streams.items():
        album = (replica.tracks.get(canon) or {}).get("album_id")
        if album:
            out[album] = out.get(album, 0) + n
    return out


def _album_ids(ctx: Ctx, ltype: str) -> list[str]:
    """Album ids in the order of list type ``ltype`` (see the module doc)."""
    replica = ctx.replica
    albums = replica.albums
    ids = sorted(albums)
    if ltype == "random":
        random.shuffle(ids)
        return ids
    if ltype == "newest":
        return sorted(ids, key=lambda a: (albums[a].get("release_date") or "", a), reverse=True)
    if ltype in ("frequent", "highest"):
        streams = _album_streams(replica)
        return sorted(ids, key=lambda a: (-streams.get(a, 0), a))
    if ltype == "recent":
        seen: dict[str, None] = {}
        for canon in replica.recently_played(ctx.user_id):
            album = (replica.tracks.get(canon) or {}).get("album_id")
            if album and album in albums:
                seen.setdefault(album)
        return list(seen)
    if ltype == "alphabeticalByName":
        return sorted(ids, key=lambda a: (sort_name(albums[a].get("title") or a), a))
    if ltype == "alphabeticalByArtist":
        objects = ctx.objects()
        return sorted(ids, key=lambda a: (sort_name(objects.display(list(albums[a].get("artist_ids") or []))),
                                          sort_name(albums[a].get("title") or a), a))
    if ltype == "starred":
        return [i for _, i, _ in library_fold.starred(replica.library_state(ctx.user_id), "album") if i in albums]
    if ltype == "byYear":
        lo = ctx.params.int("fromYear", None, 0, MAX_YEAR)
        hi = ctx.params.int("toYear", None, 0, MAX_YEAR)
        descending = lo > hi
        lo, hi = min(lo, hi), max(lo, hi)

        def year(a: str) -> int | None:
            return (release_parts(albums[a].get("release_date")) or {}).get("year")

        chosen = [a for a in ids if (y := year(a)) is not None and lo <= y <= hi]
        return sorted(chosen, key=lambda a: (year(a), albums[a].get("release_date") or "", a), reverse=descending)
    genre = ctx.params.required("genre")  # byGenre
    chosen = {(replica.tracks.get(t) or {}).get("album_id") for t in replica.by_genre.get(genre, ())}
    return sorted(a for a in chosen if a in albums)


@method("getAlbumList2")
async def get_album_list2(ctx: Ctx) -> dict[str, Any]:
    ltype = ctx.params.required("type")
    if ltype not in ALBUM_LIST_TYPES:
        raise SubsonicError(Code.GENERIC, f"Unknown album list type {ltype[:40]!r} (one of {', '.join(ALBUM_LIST_TYPES)})")
    size = ctx.params.int("size", 10, 0, MAX_SIZE)
    offset = ctx.params.int("offset", 0, 0, MAX_OFFSET)
    with ctx.replica.lock:
        ids = _album_ids(ctx, ltype)[offset : offset + size]
        objects = ctx.objects()
        albums = [a for a in (objects.album(i) for i in ids) if a is not None]
    return {"albumList2": {"album": albums}}


def _canonical_tracks(replica: Any, ids: Any) -> list[str]:
    out = []
    for t in ids:
        doc = replica.tracks.get(t)
        if doc and doc.get("ingested") and replica.canonical_id(t) == t:
            out.append(t)
    return out


@method("getRandomSongs")
async def get_random_songs(ctx: Ctx) -> dict[str, Any]:
    size = ctx.params.int("size", 10, 0, MAX_SIZE)
    genre = ctx.params.str("genre")
    lo = ctx.params.opt_int("fromYear", 0, MAX_YEAR)
    hi = ctx.params.opt_int("toYear", 0, MAX_YEAR)
    replica = ctx.replica
    with replica.lock:
        pool = list(replica.by_genre.get(genre, ())) if genre else list(replica.tracks)
        random.shuffle(pool)
        objects = ctx.objects()
        songs = []
        for t in _canonical_tracks(replica, pool):
            if len(songs) >= size:
                break
            song = objects.song(t)
            if song is None:
                continue
            year = song.get("year")
            if (lo is not None and (year is None or year < lo)) or (hi is not None and (year is None or year > hi)):
                continue
            songs.append(song)
    return {"randomSongs": {"song": songs}}


@method("getGenres")
async def get_genres(ctx: Ctx) -> dict[str, Any]:
    replica = ctx.replica
    out = []
    with replica.lock:
        for genre in sorted(replica.by_genre):
            tracks = _canonical_tracks(replica, replica.by_genre[genre])
            if not tracks:
                continue
            albums = {(replica.tracks.get(t) or {}).get("album_id") for t in tracks} - {None}
            out.append({"value": genre, "songCount": len(tracks), "albumCount": len(albums)})
    return {"genres": {"genre": out}}


def _page(ctx: Ctx, kind: str) -> tuple[int, int]:
    return (ctx.params.int(f"{kind}Count", 20, 0, MAX_SIZE), ctx.params.int(f"{kind}Offset", 0, 0, MAX_OFFSET))


@method("search3")
async def search3(ctx: Ctx) -> dict[str, Any]:
    query = ctx.params.str("query") or ""
    pages = {kind: _page(ctx, kind) for kind in ("artist", "album", "song")}
    replica = ctx.replica
    result: dict[str, list[dict]] = {}
    if empty_query(query):
        with replica.lock:
            objects = ctx.objects()
            listing = {"artist": sorted(replica.artists), "album": sorted(replica.albums),
                       "song": sorted(_canonical_tracks(replica, replica.tracks))}
            for kind, (count, offset) in pages.items():
                ids = listing[kind][offset : offset + count]
                result[kind] = _render(objects, kind, ids)
        return {"searchResult3": result}
    index = replica.search
    if index is None:
        raise SubsonicError(Code.GENERIC, "search is not enabled on this replica")
    hits = {kind: index.search(query, "track" if kind == "song" else kind, limit=count, offset=offset).ids
            if count else [] for kind, (count, offset) in pages.items()}
    with replica.lock:
        objects = ctx.objects()
        for kind, ids in hits.items():
            result[kind] = _render(objects, kind, ids)
    return {"searchResult3": result}


def _render(objects: Any, kind: str, ids: list[str]) -> list[dict]:
    make = {"artist": objects.artist, "album": objects.album, "song": objects.song}[kind]
    return [o for o in (make(i) for i in ids) if o is not None]
