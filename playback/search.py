"""Full-text search over the catalog view: tantivy (BM25 + Levenshtein-automaton fuzzy terms).

Why tantivy: a well-kept Rust full-text engine (the Lucene design: inverted index, BM25, FST term
dictionary, fuzzy term queries through Levenshtein automata) with Python bindings; an in-RAM index
of a million tracks answers a fuzzy query in a few milliseconds, and documents are added and
deleted incrementally (segments + background merges), which is what a replica that follows the
catalog view needs.

One index holds three kinds of documents (``kind``: track / artist / album), each with:

- ``key`` (raw): ``<kind>:<id>`` -- the delete/upsert handle;
- ``ids`` (raw): the id itself and, for tracks, every alias id and the ISRC (exact match only);
- ``title`` / ``artist`` / ``album`` (default tokenizer: split on non-alphanumerics, lowercase):
  the track title / artist names / album title (an artist's name goes in ``artist``, an album's
  title in ``album``);
- ``popularity`` (u64 fast field, 0..100, see :func:`popularity_of`): the ranking boost;
- ``genre`` (default tokenizer): a track's or artist's genres, and ``year`` (u64, indexed): a
  track's album's or an album's release year -- only the field filters read them.

Query: the text is split the way the index splits it; every word must match (AND) in one of the
text fields, either exactly (boosted x2) or within an edit distance that grows with the word
(:func:`max_edits`: 0 up to 3 characters, 1 up to 6, 2 from 7 on; a transposition costs 1). A query
equal to an id, alias or ISRC also matches that document. Scores are tantivy's (BM25 for exact
terms, constant for fuzzy ones) multiplied by ``log2(2 + popularity)`` (tantivy's
``weight_by_field``), so among equally good text matches the most streamed ranks first.

Field filters (``artist:"Daft Punk" year:1990-1999``, parsed by :mod:`playback.search_query`; the
route passes a :class:`~playback.search_query.ParsedQuery`, a plain string is free text only): each
word of a filter's value must match in that field (same exact/fuzzy rule), ``isrc:`` is an exact
match on the ISRC, ``year:`` a range on ``year``; free text, if any, must match as above. A query of
filters only matches every document of the kind that passes them.

Updates are buffered by the writer and become visible on :meth:`SearchIndex.commit` (the replica
commits after each applied batch). Not thread-safe for writers: one thread writes (the replica's
apply path); searches may run concurrently with it.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import tantivy

from playback.search_query import ParsedQuery

log = logging.getLogger(__name__)

KINDS = ("track", "artist", "album")
TEXT_FIELDS = ("title", "artist", "album")
_FIELD_BOOST = {"title": 3.0, "artist": 2.0, "album": 1.0}
_TOKEN_RE = re.compile(r"[^\W_]+", re.UNICODE)
MAX_QUERY_WORDS = 8  # more words add cost, not precision


def tokens(text: str) -> list[str]:
    """The words of ``text`` as the index sees them (alphanumeric runs, lowercased, max 40 chars)."""
    return [t.lower() for t in _TOKEN_RE.findall(text) if len(t) <= 40]


def max_edits(word: str) -> int:
    """Typo tolerance per word: 0 edits for <= 3 characters, 1 for 4-6, 2 from 7 on."""
    n = len(word)
    return 0 if n <= 3 else 1 if n <= 6 else 2


def popularity_of(streams: int) -> int:
    """Spotify-style popularity 0..100 from a stream count (log scale: 10 -> 12, 1e4 -> 50, 1e8 -> 100).

    Absolute rather than relative to the most streamed track, so a track's value changes only when its
    own count crosses a step (at most 100 re-indexings per track over its life)."""
    if streams <= 0:
        return 0
    return min(100, int(12.5 * math.log10(1 + streams)))


@dataclass(frozen=True)
class Hits:
    total: int
    ids: list[str]


def _schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("key", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("kind", stored=False, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("ids", stored=False, tokenizer_name="raw", index_option="basic")
    for f in TEXT_FIELDS:
        sb.add_text_field(f, stored=False, tokenizer_name="default", index_option="freq")
    sb.add_unsigned_field("popularity", stored=False, fast=True, indexed=False)
    sb.add_text_field("genre", stored=False, tokenizer_name="default", index_option="freq")
    sb.add_unsigned_field("year", stored=False, fast=True, indexed=True)
    return sb.build()


def _year(date: Any) -> int | None:
    """The year of a ``YYYY-MM-DD`` (or ``YYYY``) release date, None when there is none."""
    if isinstance(date, str) and len(date) >= 4 and date[:4].isdigit():
        return int(date[:4])
    return None


class SearchIndex:
    """An in-RAM tantivy index of track, artist and album documents (see the module docstring)."""

    def __init__(self, *, heap_size: int = 64_000_000, threads: int = 1) -> None:
        self.schema = _schema()
        self.index = tantivy.Index(self.schema)
        self._writer = self.index.writer(heap_size=heap_size, num_threads=threads)
        self._lock = threading.Lock()  # guards the writer (apply path vs. explicit commits)
        self._dirty = False
        self.commits = 0

    # -- writing -------------------------------------------------------------------------------
    def _put(self, kind: str, doc_id: str, fields: Mapping[str, Any], popularity: int) -> None:
        key = f"{kind}:{doc_id}"
        doc = tantivy.Document()
        doc.add_text("key", key)
        doc.add_text("kind", kind)
        for i in fields.get("ids", ()):
            if i:
                doc.add_text("ids", i)
        for f in (*TEXT_FIELDS, "genre"):
            for value in fields.get(f, ()):
                if value:
                    doc.add_text(f, value)
        doc.add_unsigned("popularity", max(0, min(100, int(popularity))))
        year = fields.get("year")
        if year is not None:
            doc.add_unsigned("year", year)
        with self._lock:
            self._writer.delete_documents_by_term("key", key)
            self._writer.add_document(doc)
            self._dirty = True

    def upsert_track(self, doc: Mapping[str, Any], popularity: int = 0) -> None:
        """Index a track search document (``processors.catalog.track_search_document``)."""
        self._put(
            "track",
            doc["id"],
            {
                "ids": [doc["id"], *(doc.get("aliases") or []), doc.get("isrc") or ""],
                "title": [doc.get("title") or ""],
                "artist": list(doc.get("artist_names") or []),
                "album": [doc.get("album_title") or ""],
                "genre": list(doc.get("genres") or []),
                "year": _year(doc.get("release_date")),
            },
            popularity,
        )

    def upsert_artist(self, doc: Mapping[str, Any], popularity: int = 0) -> None:
        """Index an artist search document (``catalog.artist_search_document``)."""
        self._put("artist", doc["id"], {"ids": [doc["id"]], "artist": [doc.get("name") or ""],
                                        "genre": list(doc.get("genres") or [])}, popularity)

    def upsert_album(self, doc: Mapping[str, Any], popularity: int = 0) -> None:
        """Index an album search document (``catalog.album_search_document``)."""
        self._put(
            "album",
            doc["id"],
            {"ids": [doc["id"]], "album": [doc.get("title") or ""], "artist": list(doc.get("artist_names") or []),
             "year": _year(doc.get("release_date"))},
            popularity,
        )

    def delete(self, kind: str, doc_id: str) -> None:
        with self._lock:
            self._writer.delete_documents_by_term("key", f"{kind}:{doc_id}")
            self._dirty = True

    def commit(self) -> bool:
        """Make buffered updates searchable; returns whether there was anything to commit."""
        with self._lock:
            if not self._dirty:
                return False
            self._writer.commit()
            self._dirty = False
            self.commits += 1
        self.index.reload()
        return True

    # -- reading -------------------------------------------------------------------------------
    def _words_query(self, words: list[str], fields: tuple[str, ...]) -> tantivy.Query:
        """Every word must match (exactly, boosted, or within :func:`max_edits`) in one of ``fields``."""
        schema = self.schema
        Occur = tantivy.Occur
        per_word = []
        for w in words:
            alts = []
            for f in fields:
                boost = _FIELD_BOOST.get(f, 1.0)
                alts.append((Occur.Should, tantivy.Query.boost_query(
                    tantivy.Query.term_query(schema, f, w), 2.0 * boost)))
                d = max_edits(w)
                if d:
                    alts.append((Occur.Should, tantivy.Query.boost_query(
                        tantivy.Query.fuzzy_term_query(schema, f, w, distance=d, transposition_cost_one=True),
                        boost)))
            per_word.append((Occur.Must, tantivy.Query.boolean_query(alts)))
        return tantivy.Query.boolean_query(per_word)

    def query_for(self, text: str | ParsedQuery, kind: str) -> tantivy.Query | None:
        """The tantivy query for ``text`` (free text, or a parsed query with field filters) restricted
        to ``kind``; None when it can match nothing (no words and no filter, an empty year range)."""
        parsed = text if isinstance(text, ParsedQuery) else ParsedQuery(text)
        schema = self.schema
        Occur = tantivy.Occur
        musts = [(Occur.Must, tantivy.Query.term_query(schema, "kind", kind))]
        words = list(dict.fromkeys(tokens(parsed.text)))[:MAX_QUERY_WORDS]
        if words:
            text_q = self._words_query(words, TEXT_FIELDS)
            id_q = tantivy.Query.boost_query(tantivy.Query.term_query(schema, "ids", parsed.text.strip()), 10.0)
            musts.append((Occur.Must, tantivy.Query.boolean_query([(Occur.Should, text_q), (Occur.Should, id_q)])))
        fields, years = parsed.filters_for(kind)
        for name, values in fields.items():
            for value in values:
                if name == "isrc":
                    code = value.strip()
                    musts.append((Occur.Must, tantivy.Query.boolean_query([
                        (Occur.Should, tantivy.Query.term_query(schema, "ids", code)),
                        (Occur.Should, tantivy.Query.term_query(schema, "ids", code.upper()))])))
                    continue
                value_words = list(dict.fromkeys(tokens(value)))[:MAX_QUERY_WORDS]
                if not value_words:
                    return None  # a filter with no searchable word matches nothing
                musts.append((Occur.Must, self._words_query(value_words, ("title",) if name == "track" else (name,))))
        if years is not None:
            if years[0] > years[1]:
                return None
            musts.append((Occur.Must, tantivy.Query.range_query(
                schema, "year", tantivy.FieldType.Unsigned, years[0], years[1])))
        if not words and not fields and years is None:
            return None
        return tantivy.Query.boolean_query(musts)

    def search(self, text: str | ParsedQuery, kind: str, *, limit: int = 20, offset: int = 0) -> Hits:
        """Ids of ``kind`` documents matching ``text`` (free text, or a :class:`ParsedQuery` with field
        filters), best first, and the total number of matches."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        query = self.query_for(text, kind)
        if query is None or limit <= 0 and offset < 0:
            return Hits(0, [])
        searcher = self.index.searcher()
        result = searcher.search(query, limit=max(limit, 1), count=True, offset=max(offset, 0),
                                 weight_by_field="popularity")
        ids = []
        for _score, address in result.hits[:limit]:
            key = searcher.doc(address).get_first("key")
            ids.append(key.split(":", 1)[1])
        return Hits(result.count or 0, ids)

    def num_docs(self) -> int:
        return self.index.searcher().num_docs


def build(
    tracks: Iterable[Mapping[str, Any]] = (),
    artists: Iterable[Mapping[str, Any]] = (),
    albums: Iterable[Mapping[str, Any]] = (),
    popularity: Mapping[str, int] | None = None,
    **kwargs: Any,
) -> SearchIndex:
    """A committed index from search documents (bench and tests)."""
    popularity = popularity or {}
    index = SearchIndex(**kwargs)
    for d in artists:
        index.upsert_artist(d)
    for d in albums:
        index.upsert_album(d)
    for d in tracks:
        index.upsert_track(d, popularity.get(d["id"], 0))
    index.commit()
    return index
