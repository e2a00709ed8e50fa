"""Catalog folds: per-entity documents, renditions, takedowns, ISRC canonicalization, search documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors import catalog
from processors.catalog import CatalogIndex
from schemas.codec import default_codec

CODEC = default_codec()


def ev(etype: str, at: int, eid: str, **fields) -> dict:
    """An in-memory event, checked against its Avro schema and invariants."""
    event = {"type": etype, "event_id": eid, "occurred_at": at, **fields}
    assert CODEC.from_json(CODEC.to_json(event)) == event
    return event


def track(at: int, eid: str, track_id: str, isrc: str, title: str = "Song", **over) -> dict:
    fields = {
        "track_id": track_id,
        "isrc": isrc,
        "title": title,
        "album_id": "al1",
        "artist_ids": ["ar1"],
        "duration_ms": 200_000,
        "genres": ["pop"],
        "explicit": False,
        "distributor": "d1",
        "rightsholders": [{"rightsholder_id": "rh1", "share_ppm": 1_000_000}],
    }
    fields.update(over)
    return ev("track.ingested", at, eid, **fields)


def encoded(at: int, eid: str, track_id: str, file_id: str, codec: str, kbps: int,
            tempo_bpm: float | None = None, energy: float | None = None, loudness_lufs: float = -14.0) -> dict:
    return ev(
        "audio.encoded",
        at,
        eid,
        track_id=track_id,
        file_id=file_id,
        codec=codec,
        container="mp4" if codec == "aac" else "ogg",
        bitrate_kbps=kbps,
        sample_rate_hz=44_100,
        segment_ms=10_000,
        segment_count=20,
        byte_size=kbps * 25_000,
        storage_key=f"audio/{file_id}",
        loudness_lufs=loudness_lufs,
        true_peak_dbtp=-1.0,
        tempo_bpm=tempo_bpm,
        energy=energy,
    )


def fold(events, state=None, fn=catalog.evolve):
    outputs = []
    for e in events:
        state, out = fn(state, e)
        outputs.extend(out)
    return state, outputs


# ---------------------------------------------------------------- per entity


def test_catalog_key_prefixes_entity_kind():
    assert (
        catalog.catalog_key(ev("artist.ingested", 1, "e1", artist_id="a1", name="A", genres=[]))
        == "artist:a1"
    )
    assert catalog.catalog_key(track(1, "e2", "t1", "I1")) == "track:t1"
    with pytest.raises(ValueError):
        catalog.catalog_key({"type": "play.started"})


def test_artist_latest_ingestion_wins_whatever_the_order():
    old = ev("artist.ingested", 100, "e1", artist_id="a1", name="Old Name", genres=["rock"])
    new = ev("artist.ingested", 200, "e2", artist_id="a1", name="New Name", genres=["pop", "indie"])
    s1, out1 = fold([old, new])
    s2, out2 = fold([new, old])
    assert s1 == s2
    assert catalog.to_view(s1) == {
        "kind": "artist",
        "artist_id": "a1",
        "name": "New Name",
        "genres": ["pop", "indie"],
    }
    assert len(out1) == 2 and len(out2) == 1  # the stale one changes nothing, so no view output
    assert out2[0]["key"] == "artist:a1"


def test_duplicate_event_is_a_no_op_without_output():
    album = ev(
        "album.ingested",
        5,
        "e1",
        album_id="al1",
        title="Album",
        artist_ids=["a1"],
        release_date="2026-01-02",
        label="L",
        artwork_uri=None,
    )
    state, out = catalog.evolve(None, album)
    assert out[0]["view"]["title"] == "Album"
    again, out2 = catalog.evolve(state, album)
    assert again == state and out2 == []


def test_track_isrc_from_earliest_metadata_from_latest():
    first = track(100, "e1", "t1", "ISRC-A", title="Demo")
    reingest = track(300, "e3", "t1", "ISRC-B", title="Final", explicit=True)
    state, _ = fold([reingest, first])
    view = catalog.to_view(state)
    assert view["isrc"] == "ISRC-A"  # the earliest ingestion fixes the upload's ISRC
    assert view["title"] == "Final" and view["explicit"] is True  # metadata from the latest
    assert view["ingested"] is True


def test_renditions_ladder_latest_per_file_sorted():
    events = [
        encoded(10, "e1", "t1", "f-opus-96", "opus", 96),
        encoded(11, "e2", "t1", "f-aac-256", "aac", 256),
        encoded(12, "e3", "t1", "f-aac-128", "aac", 128),
        encoded(5, "e0", "t1", "f-aac-128", "aac", 126),  # older re-encode of the same file: loses
    ]
    state, outputs = fold(events)
    rungs = catalog.to_view(state)["ladder"]
    assert [(r["codec"], r["bitrate_kbps"]) for r in rungs] == [("aac", 128), ("aac", 256), ("opus", 96)]
    assert rungs[0]["storage_key"] == "audio/f-aac-128" and rungs[0]["segment_count"] == 20
    assert len(outputs) == 3
    assert catalog.to_view(state)["ingested"] is False  # renditions may come before the ingestion


def test_takedowns_recorded_once_in_event_order():
    d1 = ev("track.taken_down", 50, "e9", track_id="t1", territories=["DE", "FR"], reason="legal")
    d2 = ev("track.taken_down", 40, "e8", track_id="t1", territories=["*"], reason="dispute")
    state, _ = fold([track(1, "e1", "t1", "I"), d1, d2, d1])
    downs = catalog.to_view(state)["takedowns"]
    assert [(d["event_id"], d["territories"]) for d in downs] == [("e8", ["*"]), ("e9", ["DE", "FR"])]


def test_event_for_another_entity_is_dead_lettered():
    state, _ = catalog.evolve(None, track(1, "e1", "t1", "I"))
    same, out = catalog.evolve(state, track(2, "e2", "t2", "I"))
    assert same is state
    assert out[0]["kind"] == "dead_letter" and "t2" in out[0]["reason"]
    _, out = catalog.evolve(None, {"type": "play.started", "event_id": "x", "occurred_at": 1})
    assert out[0]["kind"] == "dead_letter"


def test_evolve_does_not_mutate_the_input_state():
    state, _ = fold([track(1, "e1", "t1", "I"), encoded(2, "e2", "t1", "f1", "aac", 96)])
    snapshot = repr(state)
    catalog.evolve(state, encoded(3, "e3", "t1", "f2", "aac", 160))
    catalog.evolve(state, ev("track.taken_down", 4, "e4", track_id="t1", territories=["*"], reason="r"))
    assert repr(state) == snapshot


_track_events = st.lists(
    st.one_of(
        st.builds(
            lambda at, n, isrc, title: track(at, f"e{n}", "t1", isrc, title=title),
            st.integers(0, 50),
            st.integers(0, 30),
            st.sampled_from(["I1", "I2"]),
            st.sampled_from(["a", "b", "c"]),
        ),
        st.builds(
            lambda at, n, f, kbps: encoded(at, f"e{n}", "t1", f, "aac", kbps),
            st.integers(0, 50),
            st.integers(31, 60),
            st.sampled_from(["f1", "f2"]),
            st.sampled_from([96, 160, 320]),
        ),
        st.builds(
            lambda at, n, terr: ev(
                "track.taken_down", at, f"e{n}", track_id="t1", territories=terr, reason="r"
            ),
            st.integers(0, 50),
            st.integers(61, 90),
            st.sampled_from([["*"], ["DE"], ["DE", "FR"]]),
        ),
    ),
    max_size=12,
    unique_by=lambda e: e["event_id"],
)


@settings(max_examples=150, deadline=None)
@given(events=_track_events, data=st.data())
def test_track_fold_is_order_and_duplicate_independent(events, data):
    shuffled = data.draw(st.permutations(events))
    dupes = data.draw(st.lists(st.sampled_from(events), max_size=5)) if events else []
    a, _ = fold(events, fn=catalog.evolve_track)
    b, _ = fold([*shuffled, *dupes], fn=catalog.evolve_track)
    assert a == b


# ---------------------------------------------------------------- ISRC canonicalization


def test_canonical_is_earliest_upload_of_the_isrc():
    index = CatalogIndex()
    out = index.evolve(track(200, "e2", "t-late", "ISRC1"))
    assert out == [{"kind": "canonical", "track_id": "t-late", "canonical_id": "t-late"}]
    out = index.evolve(track(100, "e1", "t-early", "ISRC1"))  # arrives late, happened earlier
    assert sorted((o["track_id"], o["canonical_id"]) for o in out) == [
        ("t-early", "t-early"),
        ("t-late", "t-early"),
    ]
    assert index.canonical_id("t-late") == "t-early"
    assert index.aliases("t-early") == ["t-late"]
    assert index.members("t-early") == ["t-early", "t-late"]
    assert index.canonical_id("nope") is None
    assert index.evolve(track(100, "e1", "t-early", "ISRC1")) == []  # duplicate


def test_canonical_tie_on_time_broken_by_event_id():
    index = CatalogIndex()
    index.evolve(track(100, "e-b", "t-b", "I"))
    index.evolve(track(100, "e-a", "t-a", "I"))
    assert index.canonical_id("t-b") == "t-a"


def test_track_isrc_is_the_one_of_its_earliest_ingestion():
    index = CatalogIndex()
    index.evolve(track(100, "e1", "t1", "I1"))
    index.evolve(track(50, "e2", "t2", "I2"))
    index.evolve(track(300, "e3", "t2", "I1"))  # re-ingest of t2 with I1: t2 stays on I2
    assert index.isrc_of("t2") == "I2"
    assert index.canonical_id("t2") == "t2"
    assert index.canonical_id("t1") == "t1"


def test_index_round_trips_through_plain_data():
    index = CatalogIndex()
    for e in [track(1, "e1", "a", "I"), track(2, "e2", "b", "I"), track(3, "e3", "c", "J")]:
        index.evolve(e)
    copy = CatalogIndex.from_dict(json.loads(json.dumps(index.to_dict())))
    assert copy == index
    assert copy.aliases("a") == ["b"] and copy.canonical_ids() == ["a", "c"]


def _reference_canon(events: list[dict]) -> dict[str, str]:
    """The rule of events.md, computed directly."""

    def key(e):
        return (e["occurred_at"], e["event_id"])

    out = {}
    for t in {e["track_id"] for e in events}:
        isrc = min((e for e in events if e["track_id"] == t), key=key)["isrc"]
        out[t] = min((e for e in events if e["isrc"] == isrc), key=key)["track_id"]
    return out


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(
        st.builds(
            lambda at, n, t, i: track(at, f"e{n:02d}", t, i),
            st.integers(0, 20),
            st.integers(0, 99),
            st.sampled_from(["t1", "t2", "t3", "t4", "t5"]),
            st.sampled_from(["I1", "I2", "I3"]),
        ),
        max_size=12,
        unique_by=lambda e: e["event_id"],
    ),
    data=st.data(),
)
def test_index_matches_the_rule_in_any_order_with_duplicates(events, data):
    order = data.draw(st.permutations(events))
    dupes = data.draw(st.lists(st.sampled_from(events), max_size=4)) if events else []
    index = CatalogIndex()
    published: dict[str, str] = {}
    for e in [*order, *dupes]:
        for o in index.evolve(e):
            published[o["track_id"]] = o["canonical_id"]
    expected = _reference_canon(events)
    assert {t: index.canonical_id(t) for t in expected} == expected
    assert published == expected  # the compacted alias topic ends equal to the index
    for canon in set(expected.values()):
        assert index.members(canon) == sorted(t for t, c in expected.items() if c == canon)


# ---------------------------------------------------------------- search documents


def test_track_search_document_joins_names_and_aliases():
    state, _ = catalog.evolve(None, track(1, "e1", "t1", "I", title="Blue", artist_ids=["ar1", "ar2"]))
    artists = {
        "ar1": catalog.to_view(
            catalog.evolve(None, ev("artist.ingested", 1, "a1", artist_id="ar1", name="Ann", genres=[]))[0]
        ),
    }
    album_state, _ = catalog.evolve(
        None,
        ev(
            "album.ingested",
            1,
            "b1",
            album_id="al1",
            title="Skies",
            artist_ids=["ar1"],
            release_date="2026-02-03",
            label="L",
            artwork_uri=None,
        ),
    )
    doc = catalog.track_search_document(
        catalog.to_view(state),
        canonical_id="t1",
        aliases=["t1-x", "t1", "t1-b"],
        artists=artists,
        albums={"al1": catalog.to_view(album_state)},
    )
    assert doc == {
        "id": "t1",
        "title": "Blue",
        "isrc": "I",
        "artist_ids": ["ar1", "ar2"],
        "artist_names": ["Ann"],  # ar2 not ingested yet
        "album_id": "al1",
        "album_title": "Skies",
        "release_date": "2026-02-03",  # the album's (the search index's year: filter)
        "aliases": ["t1-b", "t1-x"],
        "genres": ["pop"],
        "explicit": False,
        "duration_ms": 200_000,
    }
    assert catalog.album_search_document(catalog.to_view(album_state), artists)["artist_names"] == ["Ann"]


def test_best_ladder_prefers_canonical_then_first_alias_with_rungs():
    canon, _ = catalog.evolve(None, track(1, "e1", "t1", "I"))
    alias, _ = fold([track(2, "e2", "t1-x", "I"), encoded(3, "e3", "t1-x", "fx", "aac", 96)])
    assert [r["file_id"] for r in catalog.best_ladder(catalog.to_view(canon), [catalog.to_view(alias)])] == [
        "fx"
    ]
    canon, _ = catalog.evolve(canon, encoded(4, "e4", "t1", "f1", "opus", 160))
    assert [r["file_id"] for r in catalog.best_ladder(catalog.to_view(canon), [catalog.to_view(alias)])] == [
        "f1"
    ]
    assert catalog.best_ladder(None) == []


FIXTURE = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "royalties-sample.jsonl"


def test_shared_fixture_catalog_folds_cleanly():
    index = CatalogIndex()
    tracks: dict[str, dict] = {}
    for line in FIXTURE.read_text().splitlines():
        event = CODEC.from_json(json.loads(line))
        if event["type"] not in catalog.CATALOG_TYPES:
            continue
        index.evolve(event)
        key = catalog.catalog_key(event)
        tracks[key], out = catalog.evolve(tracks.get(key), event)
        assert all(o["kind"] == "view" for o in out)
    assert index.canonical_id("t028-x") == "t028" and index.canonical_id("t035-x") == "t035"
    assert index.aliases("t028") == ["t028-x"]
    assert catalog.to_view(tracks["track:t030"])["takedowns"][0]["territories"] == ["*"]


def test_audio_features_come_from_the_best_measured_rendition() -> None:
    s, _ = catalog.evolve(None, track(1, "i", "t1", "ISRC1"))
    assert catalog.to_view(s)["audio_features"] is None  # no rendition yet
    s, _ = catalog.evolve(s, encoded(2, "a", "t1", "f-old", "aac", 320, loudness_lufs=-9.0))  # v1: no features
    assert catalog.to_view(s)["audio_features"] == {"tempo_bpm": None, "energy": None, "loudness_lufs": -9.0}
    s, _ = catalog.evolve(s, encoded(3, "b", "t1", "f96", "aac", 96, 121.5, 0.8, -14.5))
    s, out = catalog.evolve(s, encoded(4, "c", "t1", "f160", "opus", 160, 121.5, 0.8, -14.1))
    doc = catalog.to_view(s)
    # the 320 kbps rung has no measured features: the best measured one (opus 160) is read
    assert doc["audio_features"] == {"tempo_bpm": 121.5, "energy": 0.8, "loudness_lufs": -14.1}
    assert out[0]["view"]["audio_features"] == doc["audio_features"]
    assert all("tempo_bpm" not in r for r in doc["ladder"])  # the ladder keeps its rendition fields
