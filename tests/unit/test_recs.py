"""Recommender: similarity exactness, filters, shelves, determinism, cold start, the bench's metrics."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.recs import evaluate
from processors import taste
from processors.home import DictCatalog
from processors.recs import ranker, shelves, similarity

T0 = 1_780_000_000_000  # 2026-05-28 (Thursday), ISO week 2026-W22
DAY = 86_400_000


# ------------------------------------------------------------------ similarity


def test_cosine_on_a_hand_computed_example():
    # u1: A B C, u2: A B, u3: B C, u4: A. Listeners: A3 B3 C2. Co: AB=2, AC=1, BC=2
    sets = {"u1": ["A", "B", "C"], "u2": ["B", "A", "A"], "u3": ["C", "B"], "u4": ["A"]}
    nb = similarity.item_item(sets, k=5)
    assert [b for b, _ in nb["A"]] == ["B", "C"]
    assert nb["A"][0][1] == pytest.approx(2 / 3)  # 2 / sqrt(3*3)
    assert nb["A"][1][1] == pytest.approx(1 / math.sqrt(6))
    assert [b for b, _ in nb["C"]] == ["B", "A"]  # 2/sqrt(6) > 1/sqrt(6)
    assert nb["C"][0][1] == pytest.approx(2 / math.sqrt(6))


def test_neighbours_of_b_by_exact_value():
    sets = {"u1": ["A", "B", "C"], "u2": ["B", "A"], "u3": ["C", "B"], "u4": ["A"]}
    nb = similarity.item_item(sets, k=5)
    # B-A: 2/sqrt(9)=0.667, B-C: 2/sqrt(6)=0.816
    assert nb["B"] == [("C", pytest.approx(2 / math.sqrt(6))), ("A", pytest.approx(2 / 3))]


def test_exact_ties_break_by_id_and_top_k_cuts():
    # X co-occurs once with each of p, q, r; all three have 1 listener: equal similarity
    sets = {"u1": ["X", "r"], "u2": ["X", "p"], "u3": ["X", "q"]}
    nb = similarity.item_item(sets, k=2)
    assert [b for b, _ in nb["X"]] == ["p", "q"]


def test_near_tie_ordered_exactly():
    # c=3, n=10 -> 9/10 ; c=1, n=1 -> 1/1: exact comparison; c=2,n=4 -> 4/4=1 ties with c=1,n=1
    counts = {"X": {"a": 3, "b": 1, "c": 2}}
    listeners = {"X": 5, "a": 10, "b": 1, "c": 4}
    nb = similarity.from_cooccurrence(counts, listeners, k=3)
    assert [b for b, _ in nb["X"]] == ["b", "c", "a"]


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([f"u{i}" for i in range(8)]),
        st.lists(st.sampled_from(list("abcdefg")), min_size=1, max_size=6),
        min_size=1,
    ),
    st.randoms(use_true_random=False),
)
def test_similarity_independent_of_input_order(sets, rnd):
    shuffled_users = list(sets.items())
    rnd.shuffle(shuffled_users)
    other = {}
    for u, ts in shuffled_users:
        ts = list(ts)
        rnd.shuffle(ts)
        other[u] = ts
    assert similarity.item_item(sets, k=3) == similarity.item_item(other, k=3)


# ------------------------------------------------------------------ fixtures

DOCS = [
    {"track_id": "r1", "title": "Rock One", "artist_ids": ["ar1"], "genres": ["rock"]},
    {"track_id": "r2", "title": "Rock Two", "artist_ids": ["ar1"], "genres": ["rock"]},
    {"track_id": "r3", "artist_ids": ["ar1"], "genres": ["rock"]},
    {"track_id": "r4", "artist_ids": ["ar2"], "genres": ["rock"]},
    {"track_id": "r5", "artist_ids": ["ar2"], "genres": ["rock"], "explicit": True},
    {"track_id": "r6", "artist_ids": ["ar3"], "genres": ["rock"]},
    {"track_id": "j1", "artist_ids": ["aj1"], "genres": ["jazz"]},
    {"track_id": "j2", "artist_ids": ["aj1"], "genres": ["jazz"]},
    {"track_id": "j3", "artist_ids": ["aj2"], "genres": ["jazz"]},
    {"track_id": "p1", "artist_ids": ["ap1"], "genres": ["pop"]},
    {"track_id": "p2", "artist_ids": ["ap1"], "genres": ["pop"]},
]
CAT = DictCatalog.from_documents(DOCS)
POP = {"p1": 100, "p2": 90, "r4": 50, "r1": 40, "j1": 30, "r6": 20, "r2": 10, "j3": 5}
LISTENERS = {
    "x1": ["r1", "r2", "r4", "r5"],
    "x2": ["r1", "r4", "r6"],
    "x3": ["r2", "r4", "r6", "j1"],
    "x4": ["j1", "j2", "j3"],
    "x5": ["p1", "p2"],
    "x6": ["r1", "r6", "r3"],
}
NB = similarity.item_item(LISTENERS, k=10)
CTX = ranker.Context("DE", T0, hour=20, device="mobile")


def sig(n, track, kind="stream", at=T0 - DAY):
    d = CAT.track(track)
    return {
        "event_id": f"e{n}",
        "user_id": "me",
        "track_id": track,
        "artist_ids": d["artist_ids"],
        "genres": d["genres"],
        "kind": kind,
        "at": at - n * 1000,
        "country": "DE",
    }


def profile_of(*tracks, skips=()):
    p = None
    for n, t in enumerate(tracks):
        p, _ = taste.evolve(p, sig(n, t))
    for n, t in enumerate(skips, start=len(tracks)):
        p, _ = taste.evolve(p, sig(n, t, "skip", at=T0))
    return p


def lookups(**kw):
    return ranker.Lookups(CAT, NB, POP, **kw)


# ------------------------------------------------------------------ filters


def test_freshness_rights_explicit_and_diversity():
    p = profile_of("r1")
    t = ranker.read_taste(p, CAT, CTX)
    # r1 is in the recent history (freshness); ar1 then has r2, r3 (2 per artist): r8-like extras would drop
    order = ["r1", "r2", "r3", "r5", "r4", "r6", "j1"]
    assert ranker.select(order, t, lookups(), CTX, 10, max_per_artist=2) == [
        "r2",
        "r3",
        "r5",
        "r4",
        "r6",
        "j1",
    ]
    assert ranker.select(order, t, lookups(), CTX, 10, max_per_artist=1) == ["r2", "r5", "r6", "j1"]
    got = ranker.select(["r2", "r3", "x9", "r5", "r4", "r6"], t, lookups(), CTX, 10, max_per_artist=1)
    assert got == ["r2", "r5", "r6"]  # one per artist, unknown id dropped
    no_explicit = ranker.Context("DE", T0, allow_explicit=False)
    assert "r5" not in ranker.select(["r5", "r4"], t, lookups(), no_explicit, 10)
    blocked = lookups(rights_check=lambda tid, country, now: not (tid == "r4" and country == "DE"))
    assert ranker.select(["r4", "r6"], t, blocked, CTX, 10) == ["r6"]
    assert ranker.select(["r4"], t, blocked, ranker.Context("FR", T0), 10) == ["r4"]
    assert ranker.select(["r1", "r2"], t, lookups(), CTX, 10) == ["r2"]  # r1 in the recent history
    assert ranker.select(["r2", "r4"], t, lookups(listened={"r2"}), CTX, 10, new_only=True) == ["r4"]


def test_at_most_two_per_artist_on_a_shelf():
    p = profile_of("r4", "r6", "j1")
    picks = shelves.for_you(p, lookups(), CTX, size=10)
    per = {}
    for x in picks:
        for a in CAT.track(x)["artist_ids"]:
            per[a] = per.get(a, 0) + 1
    assert picks and max(per.values()) <= 2
    assert not {"r4", "r6", "j1"} & set(picks)


def test_recent_skip_penalizes_the_artist():
    plain = profile_of("r4", "j1")
    skipped = profile_of("r4", "j1", skips=["r1"])
    t0 = ranker.read_taste(plain, CAT, CTX)
    t1 = ranker.read_taste(skipped, CAT, CTX)
    assert "ar1" in t1.skipped_artists
    s0 = dict(ranker.rank(["r2"], t0, lookups(), CTX, {}))
    s1 = dict(ranker.rank(["r2"], t1, lookups(), CTX, {}))
    assert s1["r2"] < s0["r2"]


def test_disliked_artist_excluded():
    p = profile_of(skips=["p1", "p2"])
    t = ranker.read_taste(p, CAT, CTX)
    assert ranker.select(["p1", "p2", "j1"], t, lookups(), CTX, 10, fresh=False) == ["j1"]


# ------------------------------------------------------------------ shelves


def test_discover_weekly_frozen_within_week_and_changes_next():
    # a larger catalog so the jitter has room to reorder
    docs = [{"track_id": f"t{i:03d}", "artist_ids": [f"a{i}"], "genres": ["rock"]} for i in range(200)]
    cat = DictCatalog.from_documents(docs)
    pop = {f"t{i:03d}": 10 for i in range(200)}  # equal popularity: only the jitter separates them
    lk = ranker.Lookups(cat, {}, pop)
    p = None
    for n in range(3):
        d = docs[n]
        p, _ = taste.evolve(
            p,
            {
                "event_id": f"e{n}",
                "user_id": "me",
                "track_id": d["track_id"],
                "artist_ids": d["artist_ids"],
                "genres": ["rock"],
                "kind": "stream",
                "at": T0 - DAY,
                "country": "DE",
            },
        )
    monday = T0 - 3 * DAY  # 2026-05-25, Monday of W22
    sunday = T0 + 3 * DAY
    assert shelves.iso_week(monday) == shelves.iso_week(sunday) == "2026-W22"
    assert shelves.iso_week(T0 + 4 * DAY) == "2026-W23"
    a = shelves.discover_weekly(p, lk, ranker.Context("DE", monday), shelves.iso_week(monday))
    b = shelves.discover_weekly(p, lk, ranker.Context("DE", sunday), shelves.iso_week(sunday))
    c = shelves.discover_weekly(p, lk, ranker.Context("DE", T0 + 4 * DAY), shelves.iso_week(T0 + 4 * DAY))
    assert a == b and len(a) == 30
    assert a != c
    assert not {"t000", "t001", "t002"} & set(a)


def test_shelves_are_deterministic():
    p = profile_of("r1", "r4", "j1", skips=["p1"])
    one = shelves.home(p, lookups(), CTX)
    two = shelves.home(p, lookups(), CTX)
    assert one == two and one
    ids = [x for s in one for x in s["track_ids"]]
    assert len(ids) == len(set(ids))  # never twice on a page
    # Discover Weekly is filled first: the shelf is the standalone one, whatever else is on the page,
    # and neither the hour nor the device changes it
    dw = shelves.discover_weekly(p, lookups(), CTX, "2026-W22", weights=shelves.WEEKLY_WEIGHTS)
    assert dw and one[0] == {"id": "discover-weekly:2026-W22", "title": "Discover Weekly",
                             "context": {"kind": "week", "ids": ["2026-W22"]}, "track_ids": dw}
    other = ranker.Context("DE", T0, hour=8, device="car")
    assert [s for s in shelves.home(p, lookups(), other) if s["id"].startswith("discover")] == [one[0]]
    assert not any(s["id"].startswith("popular") for s in one)  # with a history: no popularity shelf


def test_time_of_day_compares_plays_and_request_on_one_clock():
    # three jazz streams at 12:00 UTC; the user is at UTC+6 (18:00 local), the request at 12:00 UTC
    noon = 1_780_056_000_000  # 2026-05-29 12:00 UTC
    assert noon % DAY == 12 * 3_600_000
    p = None
    for n in range(3):
        p, _ = taste.evolve(p, {**sig(n, "j1"), "at": noon - n * DAY})
    local = ranker.Context("DE", noon, hour=18, utc_offset_min=360)  # the request's local hour, same clock
    assert local.local_hour(noon - DAY) == 18
    assert ranker.read_taste(p, CAT, local).daypart == {"jazz": 1.0}
    derived = ranker.Context("DE", noon, utc_offset_min=360)  # no hour given: derived on the same clock
    assert derived.local_hour() == 18 and ranker.read_taste(p, CAT, derived).daypart == {"jazz": 1.0}
    utc = ranker.Context("DE", noon)  # offset unknown: UTC for both
    assert ranker.read_taste(p, CAT, utc).daypart == {"jazz": 1.0}
    # the play 6 h away on the same clock is outside the +-3 h window
    assert ranker.read_taste(p, CAT, ranker.Context("DE", noon + 6 * 3_600_000)).daypart == {}


def test_because_you_listened_uses_neighbours():
    p = profile_of("r1")
    shelf = shelves.because_you_listened(p, lookups(), CTX, "r1")
    assert shelf["title"] == "Because you listened to Rock One"
    # r1's listeners (x1, x2, x6) also streamed r4 (2), r6 (2), r2, r5, r3
    assert set(shelf["track_ids"]) <= {"r2", "r3", "r4", "r5", "r6"}
    assert shelf["track_ids"][0] in {"r4", "r6"}


def test_daily_mixes_one_per_taste_cluster():
    p = profile_of("r1", "r4", "r6", "j1", "j2")
    mixes = shelves.daily_mixes(p, lookups(listened={"r1", "r4", "r6", "j1", "j2"}), CTX)
    assert [m["context"]["ids"] for m in mixes] == [["rock"], ["jazz"]]
    assert all(CAT.track(x)["genres"] == ["jazz"] for x in mixes[1]["track_ids"])


def test_radio_seed_track_leads():
    got = shelves.radio(lookups(), CTX, seed_track="r1", size=5)
    assert got[0] == "r1" and len(got) == 5 and len(set(got)) == 5
    with pytest.raises(ValueError):
        shelves.radio(lookups(), CTX)


def test_recommend_semantics():
    out = shelves.recommend(lookups(), CTX, seed_tracks=["r1"], seed_genres=["jazz"], limit=4)
    assert len(out["tracks"]) == 4 and "r1" not in out["tracks"]
    assert [(s["id"], s["type"]) for s in out["seeds"]] == [("r1", "TRACK"), ("jazz", "GENRE")]
    with pytest.raises(ValueError):
        shelves.recommend(lookups(), CTX)
    with pytest.raises(ValueError):
        shelves.recommend(lookups(), CTX, seed_genres=["a", "b", "c", "d", "e", "f"])
    with pytest.raises(ValueError):
        shelves.recommend(lookups(), CTX, seed_artists=["ar1"], limit=101)
    fr = shelves.recommend(
        lookups(rights_check=lambda t, c, n: c != "FR" or t != "r4"), CTX, seed_tracks=["r1"], market="FR"
    )
    assert "r4" not in fr["tracks"]


def test_cold_start_popular_in_country_then_genre_picks():
    page = shelves.home(None, lookups(), CTX)
    assert page[0]["id"] == "popular:DE"
    assert page[0]["track_ids"][:3] == ["p1", "p2", "r4"]
    # genres by streams in DE: pop 190, rock 120, jazz 35; every pop track is already on the page (the
    # popular shelf), so pop's shelf is empty and omitted
    assert [s["id"] for s in page[1:]] == ["genre-picks:rock", "genre-picks:jazz"]
    assert page[1]["track_ids"] == ["r3", "r5"]
    assert shelves.for_you(None, lookups(), CTX, size=2) == ["p1", "p2"]


# ------------------------------------------------------------------ bench metrics


def test_hit_rate_and_ndcg_on_a_hand_made_example():
    held = {"a": {"x", "y"}, "b": {"z"}, "c": {"w"}}
    recs = {"a": ["q", "x", "r", "y"], "b": ["z"], "c": ["q", "r"]}
    hit, ndcg = evaluate(recs, held, k=10)
    assert hit == pytest.approx(2 / 3)
    ideal_a = 1 + 1 / math.log2(3)
    dcg_a = 1 / math.log2(3) + 1 / math.log2(5)
    assert ndcg == pytest.approx((dcg_a / ideal_a + 1.0 + 0.0) / 3)
    assert evaluate({"a": ["q", "x"]}, {"a": {"x"}}, k=1) == (0.0, 0.0)


def test_bench_is_deterministic_for_a_seed_and_registered():
    from benchmarks.cli import bench_group
    from benchmarks.recs import run, synthesize

    a, b = synthesize(30, 200, 3), synthesize(30, 200, 3)
    assert a.train == b.train and a.held == b.held
    assert synthesize(30, 200, 4).train != a.train

    def metrics(r):
        return {k: v for k, v in r.items() if not k.endswith("_s")}

    assert metrics(run(users=40, tracks=200, seed=3)) == metrics(run(users=40, tracks=200, seed=3))
    assert "recs" in bench_group.commands
