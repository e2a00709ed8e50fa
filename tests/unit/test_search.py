"""The tantivy search index: typo tolerance by word length, popularity boost, incremental updates."""

from __future__ import annotations

from playback import search
from playback.search import SearchIndex, max_edits, popularity_of, tokens


def doc(i: str, title: str, artists=("Someone",), album="An Album", aliases=(), isrc=None) -> dict:
    return {"id": i, "title": title, "artist_names": list(artists), "album_title": album, "aliases": list(aliases),
            "isrc": isrc}


def test_tokens_and_edit_budget() -> None:
    assert tokens("Hello, World-Wide r&b!") == ["hello", "world", "wide", "r", "b"]
    assert [max_edits(w) for w in ("abc", "abcd", "abcdef", "abcdefg")] == [0, 1, 1, 2]


def test_popularity_is_monotonic_and_bounded() -> None:
    values = [popularity_of(n) for n in (0, 1, 10, 100, 10_000, 10**8, 10**12)]
    assert values == sorted(values) and values[0] == 0 and values[-1] == 100 and values[4] == 50


def test_fuzzy_matching_respects_the_edit_budget() -> None:
    idx = search.build(tracks=[doc("t1", "Midnight Harbor"), doc("t2", "Cat Song")])
    assert idx.search("midnigth", "track").ids == ["t1"]  # transposition: 1 edit
    assert idx.search("mdnigth harbr", "track").ids == ["t1"]  # 2 edits on a 7-letter word, 1 on 5
    assert idx.search("mdnigt", "track").ids == []  # 2 edits on a 6-letter word: too many
    assert idx.search("mxdnxghx", "track").ids == []  # 3 edits: too far
    assert idx.search("cat", "track").ids == ["t2"]
    assert idx.search("cot", "track").ids == []  # short words must match exactly
    assert idx.search("midnight cat", "track").ids == []  # every word must match


def test_popularity_breaks_ties_and_updates_are_incremental() -> None:
    idx = search.build(tracks=[doc("a", "Golden River"), doc("b", "Golden River")], popularity={"b": 80})
    assert idx.search("golden river", "track").ids == ["b", "a"]
    idx.upsert_track(doc("a", "Golden River"), popularity=100)
    idx.commit()
    assert idx.search("golden river", "track").ids == ["a", "b"]
    idx.upsert_track(doc("a", "Silver Lake"), popularity=100)
    idx.delete("track", "b")
    idx.commit()
    hits = idx.search("golden", "track")
    assert hits.ids == [] and hits.total == 0
    assert idx.search("silver", "track").ids == ["a"]


def test_ids_aliases_isrc_and_kinds() -> None:
    idx = SearchIndex()
    idx.upsert_track(doc("trk-1", "Blue", artists=["Velvet Owls"], aliases=["trk-1-a"], isrc="US-ABC-26-00001"))
    idx.upsert_artist({"id": "art-1", "name": "Velvet Owls", "genres": []})
    idx.upsert_album({"id": "alb-1", "title": "Blue", "artist_names": ["Velvet Owls"]})
    idx.commit()
    assert idx.search("trk-1-a", "track").ids == ["trk-1"]
    assert idx.search("US-ABC-26-00001", "track").ids == ["trk-1"]
    assert idx.search("velvet owls", "artist").ids == ["art-1"]
    assert idx.search("velvet owls", "album").ids == ["alb-1"]
    assert idx.search("velvet owls", "track").ids == ["trk-1"]
    assert idx.search("!!!", "track").total == 0


def test_paging_and_totals() -> None:
    idx = search.build(tracks=[doc(f"t{i}", "Same Title") for i in range(25)],
                       popularity={f"t{i}": i * 4 for i in range(25)})
    first = idx.search("same", "track", limit=10)
    second = idx.search("same", "track", limit=10, offset=10)
    assert first.total == 25 and len(first.ids) == 10 and not set(first.ids) & set(second.ids)
    assert first.ids[0] == "t24"
