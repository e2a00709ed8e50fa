"""The synthetic catalog: valid, deterministic, realistic in shape, streamed."""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.synthetic import TERRITORIES, SyntheticCatalog, generate, split_ppm
from schemas.codec import default_codec


def _events(n: int, seed: int = 3, **kw) -> list[dict]:
    return list(generate(n, seed, **kw))


def test_every_event_is_valid_per_schema() -> None:
    codec = default_codec()
    for ev in _events(1500):
        assert codec.from_json(codec.to_json(ev)) == ev


def test_same_seed_same_catalog_other_seed_other_catalog() -> None:
    assert _events(300, seed=5) == _events(300, seed=5)
    a, b = _events(300, seed=5), _events(300, seed=6)
    assert [e["event_id"] for e in a] != [e["event_id"] for e in b]
    assert {e["isrc"] for e in a if e["type"] == "track.ingested"} != {
        e["isrc"] for e in b if e["type"] == "track.ingested"
    } or a[0] != b[0]


def test_shape_tracks_isrcs_aliases_rights_takedowns() -> None:
    n = 4000
    evs = _events(n, seed=11)
    types = Counter(e["type"] for e in evs)
    tracks = [e for e in evs if e["type"] == "track.ingested"]
    canonical = [t for t in tracks if not t["track_id"].endswith("-a")]
    aliases = [t for t in tracks if t["track_id"].endswith("-a")]
    assert len(canonical) == n
    assert len({t["isrc"] for t in canonical}) == n  # ISRCs unique per canonical track
    assert aliases, "some alias uploads"
    by_isrc = {t["isrc"]: t for t in canonical}
    for a in aliases:  # an alias shares an ISRC, comes later, has another id
        c = by_isrc[a["isrc"]]
        assert a["track_id"] != c["track_id"] and a["occurred_at"] > c["occurred_at"]
    for t in tracks:
        assert sum(r["share_ppm"] for r in t["rightsholders"]) == 1_000_000
    assert types["artist.ingested"] > 10 and types["album.ingested"] > 10
    assert types["track.taken_down"] >= 1
    rights = [e for e in evs if e["type"] == "rights.changed"]
    assert {r["territory"] for r in rights} == set(TERRITORIES)
    assert any(not r["allowed"] for r in rights), "some blocks"
    assert any(r["valid_from"] is not None or r["valid_to"] is not None for r in rights), "some windows"
    per_track = defaultdict(set)
    for r in rights:
        per_track[r["track_id"]].add(r["territory"])
    assert set(per_track) == {t["track_id"] for t in canonical}
    assert sum(len(v) == len(TERRITORIES) for v in per_track.values()) > 0.7 * n  # most licensed everywhere
    # every referenced artist and album was ingested before the track that names it
    seen_artists, seen_albums = set(), set()
    for e in evs:
        if e["type"] == "artist.ingested":
            seen_artists.add(e["artist_id"])
        elif e["type"] == "album.ingested":
            seen_albums.add(e["album_id"])
        elif e["type"] == "track.ingested":
            assert set(e["artist_ids"]) <= seen_artists and e["album_id"] in seen_albums


def test_event_ids_are_unique() -> None:
    ids = [e["event_id"] for e in _events(3000, seed=1)]
    assert len(ids) == len(set(ids))


def test_it_is_a_stream_a_billion_tracks_start_at_once() -> None:
    first = list(itertools.islice(generate(1_000_000_000, 0), 200))
    assert len(first) == 200 and any(e["type"] == "track.ingested" for e in first)


def test_audio_tracks_are_left_to_the_ingest_of_their_masters() -> None:
    cat = SyntheticCatalog(50, 2, audio_tracks=3, audio_seconds=4)
    evs = list(cat.events())
    ingested = {e["track_id"] for e in evs if e["type"] == "track.ingested"}
    audio_ids = [a.track["track_id"] for a in cat.audio]
    assert len(audio_ids) == 3 and not set(audio_ids) & ingested
    rights_ids = {e["track_id"] for e in evs if e["type"] == "rights.changed"}
    assert set(audio_ids) <= rights_ids  # their rights are in the stream
    levels = [a.level_dbfs for a in cat.audio]
    assert len(set(levels)) == 3  # different loudness levels
    assert cat.tracks_done == 50


@settings(max_examples=150, deadline=None)
@given(k=st.integers(1, 12), seed=st.integers(0, 2**32))
def test_split_ppm_sums_to_a_million_all_positive(k: int, seed: int) -> None:
    shares = split_ppm(random.Random(seed), k)
    assert len(shares) == k and sum(shares) == 1_000_000 and all(s > 0 for s in shares)
