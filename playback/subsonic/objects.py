"""Subsonic objects (``Child``/song, ``AlbumID3``, ``ArtistID3``, playlists, the play queue) from the replica.

Pure functions of a :class:`playback.replica_state.ReplicaState` (read only; callers hold its lock
around a response). The ID3 browsing model: ids are playlog's own (canonical track ids, album and
artist ids, playlist ids; an alias track id resolves to its canonical track); cover-art ids are
``al-<album_id>``, ``ar-<artist_id>``, ``tr-<track_id>`` and ``pl-<playlist_id>``.

What a song says about its audio (``size``, ``bitRate``, ``suffix``, ``contentType``, ``samplingRate``)
is the rendition ``stream`` would send this user without ``maxBitRate`` (playback/subsonic/media.py);
``replayGain.trackGain`` is the manifest's loudness gain. Durations are whole seconds (rounded).
Albums have no genres of their own in the catalog: an album's genre is its tracks' most common one.
Tracks not playable in the user's country are listed like the others (Subsonic has no flag for it);
``stream`` refuses them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from core.timefmt import format_ts, parse_ts
from playback.manifest import gain_db
from playback.subsonic.media import CONTENT_TYPES, SUFFIXES, choose_rung
from processors import library as library_fold

EPOCH = "1970-01-01T00:00:00.000Z"
MUSIC_FOLDER = {"id": 1, "name": "playlog"}


def seconds(ms: Any) -> int:
    return (int(ms) + 500) // 1000 if isinstance(ms, int) and ms > 0 else 0


def cover_id(kind: str, item_id: str) -> str:
    return {"album": "al-", "artist": "ar-", "track": "tr-", "playlist": "pl-"}[kind] + item_id


def release_parts(date: Any) -> dict[str, int] | None:
    """``"2024-05-17"`` -> {"year": 2024, "month": 5, "day": 17} (None for anything else)."""
    if not isinstance(date, str) or len(date) != 10:
        return None
    try:
        y, m, d = (int(x) for x in date.split("-"))
    except ValueError:
        return None
    return {"year": y, "month": m, "day": d}


def release_instant(date: Any) -> str:
    """The release date as a timestamp (midnight UTC), the epoch when unknown."""
    if release_parts(date) is None:
        return EPOCH
    try:
        return format_ts(parse_ts(f"{date}T00:00:00+00:00"))
    except ValueError:
        return EPOCH


class Objects:
    """Renders Subsonic objects for one user (their tier decides the audio fields, their library the
    ``starred`` times)."""

    def __init__(self, replica: Any, user_id: str, product: str, now_ms: int) -> None:
        self.replica = replica
        self.user_id = user_id
        self.product = product
        self.now_ms = now_ms
        self.library = replica.library_state(user_id)

    # -- small parts ------------------------------------------------------------------------------
    def starred(self, kind: str, item_id: str) -> str | None:
        at = library_fold.starred_at(self.library, kind, item_id)
        return format_ts(at) if at is not None else None

    def artist_name(self, artist_id: str) -> str:
        return str((self.replica.artists.get(artist_id) or {}).get("name") or artist_id)

    def artist_refs(self, artist_ids: list[str]) -> list[dict]:
        return [{"id": a, "name": self.artist_name(a)} for a in artist_ids]

    def display(self, artist_ids: list[str]) -> str:
        return ", ".join(self.artist_name(a) for a in artist_ids)

    # -- songs -------------------------------------------------------------------------------------
    def song(self, track_id: str) -> dict | None:
        """The ``Child`` of a track (any upload id), None when the catalog does not know it."""
        canon = self.replica.canonical_id(track_id)
        doc = self.replica.track_doc(canon) if canon else None
        if doc is None or not doc.get("ingested"):
            return None
        artist_ids = list(doc.get("artist_ids") or [])
        album_id = doc.get("album_id")
        album = self.replica.albums.get(album_id) or {} if album_id else {}
        genres = list(doc.get("genres") or [])
        title = doc.get("title") or canon
        obj: dict[str, Any] = {
            "id": canon, "parent": album_id, "isDir": False, "title": title,
            "album": album.get("title"), "artist": self.display(artist_ids) or None,
            "year": (release_parts(album.get("release_date")) or {}).get("year"),
            "genre": genres[0] if genres else None,
            "coverArt": cover_id("album", album_id) if album_id else cover_id("track", canon),
            "duration": seconds(doc.get("duration_ms")),
            "albumId": album_id, "artistId": artist_ids[0] if artist_ids else None,
            "type": "music", "mediaType": "song", "isVideo": False,
            "starred": self.starred("track", canon),
            "explicitStatus": "explicit" if doc.get("explicit") else "clean",
            "isrc": [doc["isrc"]] if doc.get("isrc") else None,
            "genres": [{"name": g} for g in genres],
            "artists": self.artist_refs(artist_ids), "displayArtist": self.display(artist_ids),
        }
        if album_id:
            tracks = self.replica.album_tracks(album_id)
            if canon in tracks:
                obj["track"] = tracks.index(canon) + 1
            album_artists = list(album.get("artist_ids") or [])
            obj["albumArtists"] = self.artist_refs(album_artists)
            obj["displayAlbumArtist"] = self.display(album_artists)
        rung = choose_rung(list(doc.get("ladder") or []), self.product)
        if rung is not None:
            codec = rung["codec"]
            obj.update(size=rung.get("byte_size"), bitRate=rung["bitrate_kbps"], suffix=SUFFIXES[codec],
                       contentType=CONTENT_TYPES[codec], samplingRate=rung.get("sample_rate_hz"),
                       path=f"{obj['artist'] or 'Unknown'}/{obj['album'] or 'Unknown'}/{title}.{SUFFIXES[codec]}")
            if isinstance(rung.get("loudness_lufs"), int | float) and isinstance(rung.get("true_peak_dbtp"), int | float):
                obj["replayGain"] = {"trackGain": round(gain_db(rung["loudness_lufs"], rung["true_peak_dbtp"]), 2),
                                     "trackPeak": round(10 ** (rung["true_peak_dbtp"] / 20), 6)}
        return obj

    def songs(self, track_ids: list[str]) -> list[dict]:
        return [s for s in (self.song(t) for t in track_ids) if s is not None]

    # -- albums and artists -------------------------------------------------------------------------
    def album(self, album_id: str, *, with_songs: bool = False) -> dict | None:
        """The ``AlbumID3`` (with its songs when asked), None when the catalog does not know it."""
        doc = self.replica.albums.get(album_id)
        tracks = self.replica.album_tracks(album_id)
        if doc is None and not tracks:
            return None
        doc = doc or {}
        songs = self.songs(tracks)
        artist_ids = list(doc.get("artist_ids") or []) or list(dict.fromkeys(
            a for s in songs for a in (x["id"] for x in s["artists"])))
        genres = Counter(g["name"] for s in songs for g in s["genres"])
        top = [g for g, _ in genres.most_common()]
        label = doc.get("label")
        obj: dict[str, Any] = {
            "id": album_id, "name": doc.get("title") or album_id,
            "artist": self.display(artist_ids) or None, "artistId": artist_ids[0] if artist_ids else None,
            "coverArt": cover_id("album", album_id), "songCount": len(songs),
            "duration": sum(s["duration"] for s in songs), "created": release_instant(doc.get("release_date")),
            "year": (release_parts(doc.get("release_date")) or {}).get("year"),
            "genre": top[0] if top else None, "starred": self.starred("album", album_id),
            "artists": self.artist_refs(artist_ids), "displayArtist": self.display(artist_ids),
            "releaseDate": release_parts(doc.get("release_date")),
            "recordLabels": [{"name": label}] if label else None, "genres": [{"name": g} for g in top],
        }
        if with_songs:
            obj["song"] = songs
        return obj

    def artist(self, artist_id: str, *, with_albums: bool = False) -> dict | None:
        """The ``ArtistID3`` (with its albums when asked), None when the catalog does not know it."""
        doc = self.replica.artists.get(artist_id)
        album_ids = sorted(self.replica.albums_by_artist.get(artist_id, ()))
        if doc is None and not album_ids and not self.replica.by_artist.get(artist_id):
            return None
        obj: dict[str, Any] = {"id": artist_id, "name": (doc or {}).get("name") or artist_id,
                               "coverArt": cover_id("artist", artist_id), "albumCount": len(album_ids),
                               "starred": self.starred("artist", artist_id)}
        if with_albums:
            obj["album"] = [a for a in (self.album(i) for i in album_ids) if a is not None]
        return obj

    # -- playlists and the play queue ---------------------------------------------------------------
    def playlist(self, state: dict, *, with_songs: bool = True) -> dict:
        """The Subsonic playlist of a playlists-fold state (its entries as songs, in order)."""
        entries = [e["track_id"] for e in state["entries"]]
        songs = self.songs(entries)
        changed = max([e["added_at"] for e in state["entries"] if isinstance(e.get("added_at"), int)]
                      + [state.get("created_at") or 0])
        created = state.get("created_at") or changed
        obj: dict[str, Any] = {
            "id": state["playlist_id"], "name": state["name"], "owner": state["owner_id"],
            "public": bool(state["public"]), "songCount": len(songs), "duration": sum(s["duration"] for s in songs),
            "created": format_ts(created), "changed": format_ts(changed),
            "coverArt": cover_id("playlist", state["playlist_id"]),
            "readonly": state["owner_id"] != self.user_id,
        }
        if with_songs:
            obj["entry"] = songs
        return obj
