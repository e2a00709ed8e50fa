"""Spotify search field filters: the pure parser (playback/search_query.py) and the index applying them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from playback import search
from playback.search_query import ParsedQuery, parse_query, parse_year


def test_plain_text_has_no_filters() -> None:
    p = parse_query("  midnight   river ")
    assert p == ParsedQuery("midnight river", {}, None) and not p.has_filters


def test_fields_quoted_values_years_and_free_text_together() -> None:
    p = parse_query('love artist:"Daft Punk" album:Discovery year:1990-1999 track:one isrc:USABC1234567 more')
    assert p.text == "love more"
    assert p.fields == {"artist": ("Daft Punk",), "album": ("Discovery",), "track": ("one",),
                        "isrc": ("USABC1234567",)}
    assert p.years == (1990, 1999)


def test_field_names_are_case_insensitive_repeated_fields_all_count_unknown_fields_are_text() -> None:
    p = parse_query("ARTIST:a Artist:b genre:jazz mood:happy")
    assert p.fields == {"artist": ("a", "b"), "genre": ("jazz",)}
    assert p.text == "mood:happy"


def test_a_word_containing_a_field_name_is_not_a_filter() -> None:
    p = parse_query("myartist:x")
    assert p.text == "myartist:x" and p.fields == {}


def test_unclosed_quote_runs_to_the_end_and_empty_values_are_dropped() -> None:
    p = parse_query('artist:"Daft Punk')
    assert p.fields == {"artist": ("Daft Punk",)} and p.text == ""
    assert parse_query("artist: x").fields == {} and parse_query("artist: x").text == "x"


def test_years() -> None:
    assert parse_year("1999") == (1999, 1999)
    assert parse_year("1990-1999") == (1990, 1999)
    assert parse_query("year:2001 year:1990-2005").years == (2001, 2001)  # both must hold
    for bad in ("99", "19999", "1999-1990", "abcd", "1990-"):
        with pytest.raises(ValueError):
            parse_year(bad)
    with pytest.raises(ValueError, match="year"):
        parse_query("year:nineties")


def test_filters_apply_per_type_as_spotify_documents() -> None:
    p = parse_query("artist:a album:b track:c genre:g isrc:I year:2000")
    assert set(p.filters_for("track")[0]) == {"artist", "album", "track", "genre", "isrc"}
    assert p.filters_for("track")[1] == (2000, 2000)
    assert set(p.filters_for("album")[0]) == {"artist", "album"} and p.filters_for("album")[1] == (2000, 2000)
    assert set(p.filters_for("artist")[0]) == {"artist", "genre"} and p.filters_for("artist")[1] is None


@given(st.text(alphabet="abc xyz:\"-19", max_size=40))
def test_parse_never_fails_but_on_a_year_and_keeps_free_words(q: str) -> None:
    try:
        p = parse_query(q)
    except ValueError:
        assert "year:" in q.lower()
        return
    assert all(w in q for w in p.text.split())


# -- the index applying them ----------------------------------------------------------------------

def _index() -> search.SearchIndex:
    def track(i: str, title: str, artist: str, album: str, date: str, isrc: str, genres=("pop",)) -> dict:
        return {"id": i, "title": title, "artist_names": [artist], "album_title": album, "release_date": date,
                "isrc": isrc, "aliases": [], "genres": list(genres)}

    return search.build(
        tracks=[track("t1", "One More Time", "Daft Punk", "Discovery", "2001-03-12", "GBDUW0000059", ("house",)),
                track("t2", "Around the World", "Daft Punk", "Homework", "1997-01-20", "GBDUW9600012", ("house",)),
                track("t3", "One", "Metallica", "Justice", "1988-08-25", "USEE10001992", ("metal",)),
                track("t4", "Punk Song", "Other Band", "Discovery Road", "1995-05-05", "XX0000000001")],
        artists=[{"id": "a1", "name": "Daft Punk", "genres": ["house"]}, {"id": "a2", "name": "Metallica",
                                                                          "genres": ["metal"]}],
        albums=[{"id": "al1", "title": "Discovery", "artist_names": ["Daft Punk"], "release_date": "2001-03-12"},
                {"id": "al2", "title": "Homework", "artist_names": ["Daft Punk"], "release_date": "1997-01-20"}],
    )


def ids(idx: search.SearchIndex, q: str, kind: str = "track") -> list[str]:
    return sorted(idx.search(parse_query(q), kind, limit=50).ids)


def test_index_field_filters() -> None:
    idx = _index()
    assert ids(idx, 'artist:"Daft Punk"') == ["t1", "t2"]
    assert ids(idx, "punk") == ["t1", "t2", "t4"]  # free text: any field
    assert ids(idx, "artist:punk") == ["t1", "t2"]  # not t4, whose title says punk
    assert ids(idx, "one artist:metallica") == ["t3"]
    assert ids(idx, "track:one") == ["t1", "t3"]
    assert ids(idx, "album:discovery") == ["t1", "t4"]
    assert ids(idx, "year:1990-1999") == ["t2", "t4"]
    assert ids(idx, "artist:daft year:2001") == ["t1"]
    assert ids(idx, "isrc:usee10001992") == ["t3"]
    assert ids(idx, "genre:house") == ["t1", "t2"]
    assert ids(idx, "artist:metalica") == ["t3"]  # filters keep the typo tolerance
    assert ids(idx, "year:2001 year:1990-1999") == []  # an empty range
    assert ids(idx, 'artist:"Daft Punk" year:1990-1999', "album") == ["al2"]
    assert ids(idx, "artist:daft track:one", "artist") == ["a1"]  # track: does not apply to artists
    assert ids(idx, "genre:metal", "artist") == ["a2"]
    assert idx.search(parse_query("year:1990-1999"), "track").total == 2
