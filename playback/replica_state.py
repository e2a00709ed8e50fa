"""The playback API's read models: pure in-memory state built from view documents and events.

:class:`ReplicaState` holds, in memory:

- from the compacted view topics the worker publishes (``<prefix>view.catalog``, ``view.rights``,
  ``view.users``, ``view.playlists``, ``view.library``, ``view.credentials``; JSON documents, the last
  one per key wins, a null value deletes): catalog documents (tracks / artists / albums), rights
  states, user documents, playlist documents (deleted ones read as absent), starred items and the
  (encrypted) app passwords of the Subsonic API;
- derived indexes, updated incrementally as documents arrive: a :class:`processors.catalog.CatalogIndex`
  fed from each track document's ``first`` (so alias ids resolve to canonical ids exactly as the
  processors decide), tracks per artist / album / genre, and the tantivy :class:`SearchIndex`;
- from the compacted ``view.taste`` (the worker's taste stage, processors/taste_view.py): each user's taste
  profile, streamed tracks and latest play per track (:meth:`ReplicaState.recent_play`: the play a
  Subsonic scrobble reports on, whichever API process started it); from ``view.popularity`` and
  ``view.similar`` (``playlog batch recs``): streams per track and country (the popularity of track
  objects, the boost of search, cold start) and item-item neighbours. The API never reads the listening
  topic: its start-up reads one bounded document per user and per track, whatever the history's length;
- from the ``<prefix>player`` event topic, through ``processors.player.evolve`` (the ``view.player``
  document merges the user queue into the context list, so the fold state cannot be rebuilt from it,
  and read-your-writes needs the state).

Everything is applied through :meth:`ReplicaState.apply` ``(kind, key, doc)``, a pure in-memory step
that tests drive without a broker. Nothing here touches Kafka: :mod:`playback.replica` holds the feed
that consumes the topics and calls :meth:`~ReplicaState.apply`.

Read-your-writes. The API never mutates a view: it produces an event. So that its next response (and
the client's next read) reflects the write before the view topic delivers it, the API records the
event with :meth:`add_pending`; reads return the replica's state with the pending events folded on
top by the very same pure fold (``player.evolve`` / ``playlists.evolve`` / ``library.evolve``). A
pending player event is dropped once the player topic delivers it (matched by ``event_id``); a pending
playlist edit once the playlist document reaches the version the edit produced; a pending library
event once folding it over the document changes nothing (the library fold is order-free and
idempotent). So the replica converges to the log.

Concurrency: the feed's thread applies records under ``self.lock``; API handlers take the same lock
for reads that touch more than one structure. The search index commits outside the lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from playback.search import SearchIndex, popularity_of
from processors import catalog as catalog_fold
from processors import library as library_fold
from processors import player as player_fold
from processors import playlists as playlists_fold
from processors import rights as rights_fold
from processors import taste_view
from processors.rules import PLAY_TYPES

log = logging.getLogger(__name__)

VIEW_KINDS = ("catalog", "rights", "users", "playlists", "library", "credentials", "taste", "popularity",
              "similar")
EVENT_KINDS = ("player",)
KINDS = VIEW_KINDS + EVENT_KINDS
PLAYER_PENDING_MAX = 256
RECENT_PLAYS_PER_USER = taste_view.PLAYS_PER_USER  # the latest play of each of a user's recent tracks


class _Neighbours(Mapping):
    """``track_id -> {other: similarity}`` over the ``view.similar`` documents, as ``home_shelves``
    wants it."""

    def __init__(self, similar: dict[str, list[tuple[str, float]]]):
        self._similar = similar

    def __getitem__(self, key: str) -> dict[str, float]:
        return dict(self._similar[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._similar)

    def __len__(self) -> int:
        return len(self._similar)


class ReplicaState:
    """In-memory read replicas + derived indexes (see the module docstring); no I/O."""

    def __init__(self, *, search: bool = True) -> None:
        self.lock = threading.RLock()
        # view documents
        self.tracks: dict[str, dict] = {}  # upload id -> catalog track doc
        self.artists: dict[str, dict] = {}
        self.albums: dict[str, dict] = {}
        self.rights: dict[str, dict] = {}  # upload id -> rights state
        self.users: dict[str, dict] = {}
        self.playlists: dict[str, dict] = {}  # playlist id -> playlist doc
        self.players: dict[str, dict] = {}  # user id -> player fold state
        self.library: dict[str, dict] = {}  # user id -> library document (starred items)
        self.credentials: dict[str, dict] = {}  # user id -> credentials document (encrypted app passwords)
        self.credentials_changed: set[str] = set()  # users whose credentials changed (drained by the reader)
        self.playlists_by_owner: dict[str, set[str]] = {}
        self.recent_plays: dict[str, dict[str, dict]] = {}  # user -> canonical track -> its latest play
        self.erased: set[str] = set()  # users whose erasure the users view reports (no taste, no history)
        # derived
        self.index = catalog_fold.CatalogIndex()
        self.by_artist: dict[str, set[str]] = {}  # artist -> upload ids
        self.by_album: dict[str, set[str]] = {}
        self.by_genre: dict[str, set[str]] = {}
        self.albums_by_artist: dict[str, set[str]] = {}
        self.search: SearchIndex | None = SearchIndex() if search else None
        # listening-derived, from the view topics the worker's taste stage and the batch job publish
        self.profiles: dict[str, dict] = {}  # user -> taste profile (view.taste)
        self.listeners: dict[str, dict] = {}  # user -> {"user_id", "tracks": streamed tracks} (view.taste)
        self.own_plays: dict[str, dict[str, dict]] = {}  # plays this API produced (read-your-writes)
        self.popularity: dict[str, dict[str, int]] = {}  # country -> track -> streams (view.popularity)
        self.streams: dict[str, int] = {}  # canonical track -> streams, all countries (view.popularity)
        self.popularity_docs: dict[str, dict] = {}
        self.similar: dict[str, list[tuple[str, float]]] = {}  # track -> neighbours, best first (view.similar)
        self.cooccurrence = _Neighbours(self.similar)
        # read-your-writes overlays
        self.pending_player: dict[str, list[dict]] = {}
        self.pending_playlists: dict[str, list[tuple[int, dict]]] = {}  # pid -> [(version after, event)]
        self.pending_library: dict[str, list[dict]] = {}  # user -> library events not yet in the document
        self.followers: dict[str, set[str]] = {}  # "<target_type>:<target_id>" -> its followers (library docs)
        # bookkeeping
        self.applied = 0
        self.skipped = 0

    # ==============================================================================================
    # the pure step

    def apply(self, kind: str, key: str, doc: Any) -> None:
        """Apply one record: a view document (None = deleted) for view kinds, a decoded event for
        ``player``. Unknown kinds and malformed documents are counted and skipped."""
        with self.lock:
            try:
                if kind == "catalog":
                    self._apply_catalog(key, doc)
                elif kind == "rights":
                    self._put(self.rights, key, doc)
                elif kind == "users":
                    self._apply_user(key, doc)
                elif kind == "playlists":
                    self._apply_playlist(key, doc)
                elif kind == "library":
                    self._apply_library(key, doc)
                elif kind == "credentials":
                    self._put(self.credentials, key, doc)
                    self.credentials_changed.add(key)
                elif kind == "player":
                    self._apply_player(doc)
                elif kind == "taste":
                    self._apply_taste(key, doc)
                elif kind == "popularity":
                    self._apply_popularity(key, doc)
                elif kind == "similar":
                    self._apply_similar(key, doc)
                else:
                    self.skipped += 1
                    return
                self.applied += 1
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                self.skipped += 1
                log.warning("replica skipped a %s record %r: %s", kind, key, exc)

    def _apply_user(self, user_id: str, doc: dict | None) -> None:
        """A user document; once it says ``erased`` the user's taste profile, listener set and recent
        plays are dropped and never rebuilt (plays still count in the anonymous per-track aggregates of
        the batch job: popularity and similarity, which name no user)."""
        self._put(self.users, user_id, doc)
        if doc is not None and doc.get("erased"):
            self.erased.add(user_id)
            self.profiles.pop(user_id, None)
            self.listeners.pop(user_id, None)
            self.recent_plays.pop(user_id, None)
            self.own_plays.pop(user_id, None)

    @staticmethod
    def _put(table: dict, key: str, doc: Any) -> None:
        if doc is None:
            table.pop(key, None)
        else:
            table[key] = doc

    # -- catalog --------------------------------------------------------------------------------
    def _apply_catalog(self, key: str, doc: dict | None) -> None:
        kind, _, entity_id = key.partition(":")
        if kind == "track":
            self._apply_track(entity_id, doc)
        elif kind == "artist":
            old = self.artists.get(entity_id)
            self._put(self.artists, entity_id, doc)
            if self.search is not None:
                if doc is None:
                    self.search.delete("artist", entity_id)
                else:
                    self.search.upsert_artist(catalog_fold.artist_search_document(doc))
            if (old or {}).get("name") != (doc or {}).get("name"):
                self._reindex_tracks(self.by_artist.get(entity_id, ()))
                for album_id in self.albums_by_artist.get(entity_id, ()):
                    self._reindex_album(album_id)
        elif kind == "album":
            old = self.albums.get(entity_id)
            if old:
                for a in old.get("artist_ids") or []:
                    self.albums_by_artist.get(a, set()).discard(entity_id)
            self._put(self.albums, entity_id, doc)
            for a in (doc or {}).get("artist_ids") or []:
                self.albums_by_artist.setdefault(a, set()).add(entity_id)
            self._reindex_album(entity_id)
            if any((old or {}).get(f) != (doc or {}).get(f) for f in ("title", "release_date")):
                self._reindex_tracks(self.by_album.get(entity_id, ()))
        else:
            raise ValueError(f"unknown catalog key {key!r}")

    def _apply_track(self, track_id: str, doc: dict | None) -> None:
        old = self.tracks.get(track_id)
        if old:
            for a in old.get("artist_ids") or []:
                self.by_artist.get(a, set()).discard(track_id)
            for g in old.get("genres") or []:
                self.by_genre.get(g, set()).discard(track_id)
            if old.get("album_id"):
                self.by_album.get(old["album_id"], set()).discard(track_id)
        self._put(self.tracks, track_id, doc)
        affected = {track_id}
        if doc is not None:
            for a in doc.get("artist_ids") or []:
                self.by_artist.setdefault(a, set()).add(track_id)
            for g in doc.get("genres") or []:
                self.by_genre.setdefault(g, set()).add(track_id)
            if doc.get("album_id"):
                self.by_album.setdefault(doc["album_id"], set()).add(track_id)
            first = doc.get("first")
            if first:
                outputs = self.index.evolve({
                    "type": "track.ingested", "track_id": track_id, "isrc": first["isrc"],
                    "occurred_at": first["at"], "event_id": first["event_id"],
                })
                for out in outputs:
                    affected.add(out["track_id"])
                    affected.add(out["canonical_id"])
        self._reindex_tracks(affected)

    def _reindex_tracks(self, upload_ids: Iterable[str]) -> None:
        if self.search is None:
            return
        canon: set[str] = set()
        for t in list(upload_ids):
            c = self.index.canonical_id(t)
            if c != t:
                self.search.delete("track", t)
            if c is not None:
                canon.add(c)
        for c in canon:
            self._index_track(c)

    def _index_track(self, canonical_id: str) -> None:
        doc = self.track_doc(canonical_id)
        if self.search is None:
            return
        if doc is None or not doc.get("ingested"):
            self.search.delete("track", canonical_id)
            return
        sdoc = catalog_fold.track_search_document(
            doc, canonical_id=canonical_id, aliases=self.index.aliases(canonical_id),
            artists=self.artists, albums=self.albums,
        )
        self.search.upsert_track(sdoc, popularity_of(self.streams.get(canonical_id, 0)))

    def _reindex_album(self, album_id: str) -> None:
        if self.search is None:
            return
        doc = self.albums.get(album_id)
        if doc is None:
            self.search.delete("album", album_id)
        else:
            self.search.upsert_album(catalog_fold.album_search_document(doc, self.artists))

    # -- playlists and player (with read-your-writes overlays) -----------------------------------
    def _apply_playlist(self, playlist_id: str, doc: dict | None) -> None:
        old = self.playlists.get(playlist_id)
        if old is not None:
            self.playlists_by_owner.get(old["owner_id"], set()).discard(playlist_id)
        self._put(self.playlists, playlist_id, doc)
        if doc is not None:
            self.playlists_by_owner.setdefault(doc["owner_id"], set()).add(playlist_id)
        pending = self.pending_playlists.get(playlist_id)
        if pending and doc is not None:
            rest = [(v, e) for v, e in pending if v > doc["version"]]
            if rest:
                self.pending_playlists[playlist_id] = rest
            else:
                del self.pending_playlists[playlist_id]

    def _apply_library(self, user_id: str, doc: dict | None) -> None:
        self._index_follows(user_id, self.library.get(user_id), doc)
        self._put(self.library, user_id, doc)
        pending = self.pending_library.get(user_id)
        if pending:  # keep only what the document does not reflect yet (the fold is order-free, idempotent)
            rest = [e for e in pending if library_fold.evolve(doc, e)[0] != doc]
            if rest:
                self.pending_library[user_id] = rest
            else:
                del self.pending_library[user_id]

    def library_state(self, user_id: str) -> dict | None:
        """The user's library document with pending (just produced) star/unstar events folded on top."""
        with self.lock:
            state = self.library.get(user_id)
            for event in self.pending_library.get(user_id, ()):
                state, _ = library_fold.evolve(state, event)
            return state

    # -- social: follows and private sessions, from the library documents (routes/social.py) -----
    def _index_follows(self, user_id: str, old: dict | None, doc: dict | None) -> None:
        """Keep :attr:`followers` (target -> users following it) in step with one library document."""
        before = {k for k, e in ((old or {}).get("follows") or {}).items() if e["following"]}
        after = {k for k, e in ((doc or {}).get("follows") or {}).items() if e["following"]}
        for key in before - after:
            self.followers.get(key, set()).discard(user_id)
        for key in after - before:
            self.followers.setdefault(key, set()).add(user_id)

    def follows(self, user_id: str, target_type: str) -> list[str]:
        """Ids of the ``target_type`` (artist | user | playlist) the user follows, oldest follow first;
        pending (just produced) follows included."""
        return [t for t, _at in library_fold.following(self.library_state(user_id), target_type)]

    def followers_count(self, target_type: str, target_id: str) -> int:
        """How many users (erased ones not counted) follow the target, pending follows included."""
        with self.lock:
            key = library_fold.item_key(target_type, target_id)
            users = set(self.followers.get(key, ()))
            for uid in self.pending_library:
                if library_fold.follows(self.library_state(uid), target_type, target_id):
                    users.add(uid)
                else:
                    users.discard(uid)
            return len(users - self.erased)

    def take_credentials_changes(self) -> set[str]:
        """The users whose credentials document changed since the last call (then forgotten)."""
        with self.lock:
            changed, self.credentials_changed = self.credentials_changed, set()
            return changed

    def _note_play(self, event: dict) -> None:
        """Remember a play this API produced (its play_id grant, start, completion) until view.taste has it."""
        if event["user_id"] in self.erased:
            return
        user = event["user_id"]
        canon = self.index.canonical_id(event["track_id"]) or event["track_id"]
        noted = taste_view.note_play(self.own_plays.get(user, {}), event, canon)
        if noted is not None:
            self.own_plays[user] = noted

    def recent_play(self, user_id: str, canonical_id: str) -> dict | None:
        """The user's latest play of the track as the listening topic (and this API's own writes) tell:
        ``{"play_id", "issued_ms", "ms_played", "completed"}``; None when none is known."""
        with self.lock:
            seen = self.recent_plays.get(user_id, {}).get(canonical_id)
            own = self.own_plays.get(user_id, {}).get(canonical_id)
            if seen is None or (own is not None and own["issued_ms"] > seen["issued_ms"]):
                seen, own = own, seen
            if seen is not None and own is not None and own["play_id"] == seen["play_id"]:
                seen = {**seen, "ms_played": max(seen["ms_played"], own["ms_played"]),
                        "completed": seen["completed"] or own["completed"]}
            return dict(seen) if seen else None

    def recently_played(self, user_id: str) -> list[str]:
        """Canonical tracks the user played, most recent first (at most :data:`RECENT_PLAYS_PER_USER`)."""
        with self.lock:
            merged = {**self.recent_plays.get(user_id, {})}
            for t, play in self.own_plays.get(user_id, {}).items():
                if t not in merged or play["issued_ms"] >= merged[t]["issued_ms"]:
                    merged.pop(t, None)
                    merged[t] = play
            order = sorted(merged, key=lambda t: merged[t]["issued_ms"])
            return list(reversed(order))[:RECENT_PLAYS_PER_USER]

    # -- the personalization read interface (routes and shelves use only these) -----------------
    def taste_profile(self, user_id: str) -> dict | None:
        """The user's taste profile (a :mod:`processors.taste` profile state), None when none."""
        with self.lock:
            return self.profiles.get(user_id)

    def listened(self, user_id: str) -> frozenset[str]:
        """Every canonical track the user streamed (bounded, see ``taste.evolve_listener``)."""
        with self.lock:
            state = self.listeners.get(user_id)
            return frozenset(state["tracks"]) if state else frozenset()

    def history(self, user_id: str) -> list[dict]:
        """The user's recent listening, most recent first: ``{"track_id", "at", "kind", "event_id"}``
        (``kind``: stream | complete | skip; ``at``: event time, epoch ms)."""
        with self.lock:
            profile = self.profiles.get(user_id)
            rows = list(reversed(profile["history"])) if profile else []
        return [{"at": at, "event_id": sid, "track_id": track, "kind": kind} for at, sid, track, kind in rows]

    def popular(self, country: str) -> Mapping[str, int]:
        """Canonical track -> streams in the country (the popularity signal of shelves, cold start)."""
        return self.popularity.get(country, {})

    def neighbours(self, track_id: str) -> list[tuple[str, float]]:
        """Item-item neighbours of a canonical track, best first: ``[(track_id, score)]`` (view.similar)."""
        with self.lock:
            return list(self.similar.get(track_id, ()))

    def _apply_player(self, event: dict) -> None:
        if event.get("type") not in player_fold.PLAYER_TYPES:
            raise ValueError(f"not a player event: {event.get('type')!r}")
        user_id = event["user_id"]
        state, _ = player_fold.evolve(self.players.get(user_id), event)
        self.players[user_id] = state
        pending = self.pending_player.get(user_id)
        if pending:
            rest = [e for e in pending if e["event_id"] != event["event_id"]]
            if rest:
                self.pending_player[user_id] = rest
            else:
                del self.pending_player[user_id]

    def add_pending(self, event: dict) -> None:
        """Record an event the API just produced, so reads reflect it before its topic delivers it."""
        with self.lock:
            etype = event["type"]
            if etype in player_fold.PLAYER_TYPES:
                pending = self.pending_player.setdefault(event["user_id"], [])
                pending.append(event)
                del pending[:-PLAYER_PENDING_MAX]
            elif etype in playlists_fold.PLAYLIST_TYPES:
                state = self._playlist_state(event["playlist_id"])
                after, outputs = playlists_fold.evolve(state, event)
                if after is not None and not any(o.get("kind") == "dead_letter" for o in outputs):
                    self.pending_playlists.setdefault(event["playlist_id"], []).append((after["version"], event))
            elif etype in library_fold.LIBRARY_TYPES:
                self.pending_library.setdefault(event["user_id"], []).append(event)
            elif etype in PLAY_TYPES:
                self._note_play(event)

    def drop_pending(self, event: dict) -> None:
        """Forget a pending event that was never delivered (the producer gave up on it)."""
        with self.lock:
            if event["type"] in player_fold.PLAYER_TYPES:
                pending = self.pending_player.get(event["user_id"], [])
                self.pending_player[event["user_id"]] = [e for e in pending if e["event_id"] != event["event_id"]]
            elif event["type"] in playlists_fold.PLAYLIST_TYPES:
                pending = self.pending_playlists.get(event["playlist_id"], [])
                self.pending_playlists[event["playlist_id"]] = [
                    (v, e) for v, e in pending if e["event_id"] != event["event_id"]]
            elif event["type"] in library_fold.LIBRARY_TYPES:
                pending = self.pending_library.get(event["user_id"], [])
                self.pending_library[event["user_id"]] = [e for e in pending if e["event_id"] != event["event_id"]]

    def player_state(self, user_id: str) -> dict | None:
        """The user's player fold state with pending (just produced) commands folded on top."""
        with self.lock:
            state = self.players.get(user_id)
            for event in self.pending_player.get(user_id, ()):
                state, _ = player_fold.evolve(state, event)
            return state

    def playlist_state(self, playlist_id: str) -> dict | None:
        """A playlists-fold state for the playlist (rebuilt from its document), pending edits on top;
        None for a playlist that does not exist or was deleted."""
        state = self._playlist_state(playlist_id)
        return None if state is None or state.get("deleted") else state

    def playlists_of(self, owner_id: str) -> list[str]:
        """Ids of the playlists ``owner_id`` owns (pending creations included, deleted ones not), sorted."""
        with self.lock:
            ids = set(self.playlists_by_owner.get(owner_id, ())) | set(self.pending_playlists)
            return sorted(p for p in ids if (self.playlist_state(p) or {}).get("owner_id") == owner_id)

    def _playlist_state(self, playlist_id: str) -> dict | None:
        with self.lock:
            doc = self.playlists.get(playlist_id)
            state = None
            if doc is not None:
                state = {k: v for k, v in doc.items() if k not in ("tracks", "total")}
                state["entries"] = [dict(e) for e in doc["tracks"]]
                state["created_at"] = None
                state["seen"] = []
            for _version, event in self.pending_playlists.get(playlist_id, ()):
                state, _ = playlists_fold.evolve(state, event)
            return state

    # -- listening-derived views ------------------------------------------------------------------
    def _apply_taste(self, user_id: str, doc: dict | None) -> None:
        """A ``view.taste`` document (processors/taste_view.py): the user's profile, streamed tracks and
        latest plays. Documents of erased users are ignored (the stage tombstones them too)."""
        if doc is None or user_id in self.erased:
            self.profiles.pop(user_id, None)
            self.listeners.pop(user_id, None)
            self.recent_plays.pop(user_id, None)
            return
        if doc.get("user_id") != user_id:
            raise ValueError(f"taste document of {doc.get('user_id')!r} under key {user_id!r}")
        self.profiles[user_id] = doc["profile"]
        self.listeners[user_id] = {"user_id": user_id, "tracks": list(doc["listened"])}
        self.recent_plays[user_id] = {t: play for t, play in doc["plays"]}
        own = self.own_plays.get(user_id)
        if own:  # plays this API produced that the view now carries are no longer pending
            for t in [t for t, play in own.items()
                      if (self.recent_plays[user_id].get(t) or {}).get("issued_ms", -1) >= play["issued_ms"]]:
                del own[t]

    def _apply_popularity(self, track_id: str, doc: dict | None) -> None:
        """A ``view.popularity`` document: streams of a track, in total and per country (the batch job)."""
        old = self.popularity_docs.pop(track_id, None)
        if old:
            for country in old.get("by_country") or {}:
                self.popularity.get(country, {}).pop(track_id, None)
        old_pop = popularity_of(self.streams.get(track_id, 0))
        if doc is None:
            self.streams.pop(track_id, None)
        else:
            self.popularity_docs[track_id] = doc
            self.streams[track_id] = int(doc["streams"])
            for country, n in (doc.get("by_country") or {}).items():
                self.popularity.setdefault(country, {})[track_id] = int(n)
        if popularity_of(self.streams.get(track_id, 0)) != old_pop and track_id in self.tracks:
            self._index_track(track_id)

    def _apply_similar(self, track_id: str, doc: dict | None) -> None:
        """A ``view.similar`` document: a track's item-item neighbours, best first (the batch job)."""
        if doc is None:
            self.similar.pop(track_id, None)
        else:
            self.similar[track_id] = [(str(t), float(score)) for t, score in doc["neighbours"]]

    # ==============================================================================================
    # questions (the API's reads)

    def canonical_id(self, track_id: str) -> str | None:
        """The canonical id of any upload id; for a track document without ``first`` (not ingested yet)
        the id itself when a document exists; None when unknown."""
        c = self.index.canonical_id(track_id)
        if c is None and track_id in self.tracks:
            return track_id
        return c

    def members(self, canonical_id: str) -> list[str]:
        return self.index.members(canonical_id) or [canonical_id]

    def track_doc(self, track_id: str) -> dict | None:
        """The catalog document of the logical track (canonical upload; its ladder falls back to another
        upload's via ``catalog.best_ladder``). ``track_id`` may be any upload id."""
        canon = self.canonical_id(track_id)
        if canon is None:
            return None
        doc = self.tracks.get(canon)
        if doc is None:
            return None
        if not doc.get("ladder"):
            members = [self.tracks[m] for m in self.index.aliases(canon) if m in self.tracks]
            ladder = catalog_fold.best_ladder(doc, members)
            if ladder:
                doc = {**doc, "ladder": ladder}
        return doc

    def playability(self, canonical_id: str, country: str, now_ms: int) -> tuple[bool, str]:
        """(playable, reason) for the logical track in ``country`` at ``now_ms``: unknown track, taken
        down, or not licensed (no rights entry, blocked, outside its window) -> False with the reason."""
        doc = self.tracks.get(canonical_id)
        if doc is None or not doc.get("ingested"):
            return False, "unknown track"
        ids = self.members(canonical_id)
        if rights_fold.taken_down(self.rights, ids, country, now_ms):
            return False, f"track is taken down in {country}"
        if not rights_fold.rights_allow(self.rights, ids, country, now_ms):
            return False, f"track is not licensed in {country} (region blocked)"
        return True, "ok"

    def is_playable(self, track_id: str, country: str, now_ms: int) -> bool:
        canon = self.canonical_id(track_id)
        return canon is not None and self.playability(canon, country, now_ms)[0]

    # CatalogLookup protocol (processors.home)
    def track(self, track_id: str) -> Mapping[str, Any] | None:
        return self.track_doc(track_id)

    def tracks_by_artist(self, artist_id: str) -> list[str]:
        return sorted(self.by_artist.get(artist_id, ()))

    def tracks_by_genre(self, genre: str) -> list[str]:
        return sorted(self.by_genre.get(genre, ()))

    def album_tracks(self, album_id: str) -> list[str]:
        """Canonical track ids of an album, in track-id order (the synthetic catalog numbers them)."""
        out = {self.canonical_id(t) for t in self.by_album.get(album_id, ())}
        return sorted(t for t in out if t is not None)

    def stats(self) -> dict[str, int]:
        return {
            "tracks": len(self.tracks), "artists": len(self.artists), "albums": len(self.albums),
            "rights": len(self.rights), "users": len(self.users), "playlists": len(self.playlists),
            "library": len(self.library), "credentials": len(self.credentials),
            "players": len(self.players), "profiles": len(self.profiles), "applied": self.applied,
            "skipped": self.skipped,
        }

    def commit_search(self) -> bool:
        """Make buffered search-index updates visible (True if a commit happened; False without an index)."""
        if self.search is None:
            return False
        return self.search.commit()
