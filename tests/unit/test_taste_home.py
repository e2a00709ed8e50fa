"""Taste profiles (decay, order independence), co-occurrence and popularity counters, home shelves."""

from __future__ import annotations

import math
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors import home, taste
from processors.taste import DAY_MS, TasteConfig

H = 30 * DAY_MS
T0 = 1_780_000_000_000  # 2026-05-28


def sig(n, kind="stream", at=T0, track="t1", artists=("a1",), genres=("pop",), user="u1", country="DE"):
    return {
        "event_id": f"s{n}",
        "user_id": user,
        "track_id": track,
        "artist_ids": list(artists),
        "genres": list(genres),
        "kind": kind,
        "at": at,
        "country": country,
    }


def fold(signals, state=None, fn=taste.evolve, **kw):
    outputs = []
    for s in signals:
        state, out = fn(state, s, **kw)
        outputs.extend(out)
    return state, outputs


def content(profile):
    return {k: v for k, v in profile.items() if k != "seen"}


# ------------------------------------------------------------------ decay math


def test_half_life_decay_of_one_stream():
    p, _ = fold([sig(1)])
    assert taste.score(p, "artists", "a1", T0) == pytest.approx(1.0, rel=1e-9)
    assert taste.score(p, "artists", "a1", T0 + H) == pytest.approx(0.5, rel=1e-9)
    assert taste.score(p, "genres", "pop", T0 + 3 * H) == pytest.approx(0.125, rel=1e-9)
    assert taste.score(p, "artists", "nobody", T0) == 0.0


def test_weighted_sum_of_decayed_signals():
    signals = [
        sig(1, "stream", T0 - 10 * DAY_MS),
        sig(2, "complete", T0 - 10 * DAY_MS),
        sig(3, "skip", T0 - 2 * DAY_MS),
        sig(4, "stream", T0 + 5 * DAY_MS),  # after "now": counts more than 1
    ]
    p, _ = fold(signals)
    w = taste.DEFAULT_CONFIG.weights
    expected = sum(w[s["kind"]] * 2 ** (-(T0 - s["at"]) / H) for s in signals)
    assert taste.score(p, "artists", "a1", T0) == pytest.approx(expected, rel=1e-9)


def test_half_life_is_configurable():
    cfg = TasteConfig(half_life_ms=DAY_MS)
    p, _ = fold([sig(1)], config=cfg)
    assert taste.score(p, "artists", "a1", T0 + 2 * DAY_MS, cfg) == pytest.approx(0.25, rel=1e-9)


def test_decades_apart_with_short_half_life_does_not_overflow():
    cfg = TasteConfig(half_life_ms=3_600_000)
    p, _ = fold([sig(1, at=0, artists=["old"]), sig(2, at=T0, artists=["new"])], config=cfg)
    assert taste.score(p, "artists", "new", T0, cfg) == pytest.approx(1.0, rel=1e-9)
    assert taste.score(p, "artists", "old", T0, cfg) == 0.0
    assert "old" not in p["artists"]  # beyond the horizon: weighs < 2^-64 of a fresh signal
    assert taste.ranked(p, "artists", config=cfg) == ["new"]
    late, _ = fold([sig(3, at=5, artists=["older"])], p, config=cfg)  # arrives late, still beyond it
    assert "older" not in late["artists"] and late["signals"] == 3


def test_ranking_ties_by_id_and_negative_affinities_are_disliked():
    p, _ = fold([sig(1, artists=["b"]), sig(2, artists=["a"]), sig(3, "skip", artists=["c"])])
    assert taste.ranked(p, "artists") == ["a", "b"]
    assert taste.disliked(p) == {"c"}
    assert [k for k, _ in taste.top(p, "artists", T0, 1)] == ["a"]


def test_history_keeps_newest_by_event_time():
    cfg = TasteConfig(history_size=3)
    signals = [sig(i, at=T0 + i * 1000, track=f"t{i % 4}") for i in (5, 1, 4, 2, 3, 6)]
    p, _ = fold(signals, config=cfg)
    assert [e[1] for e in p["history"]] == ["s4", "s5", "s6"]
    assert taste.recent_tracks(p) == ["t2", "t1", "t0"]


def test_malformed_signal_is_dead_lettered_and_duplicate_ignored():
    p, out = fold([{**sig(1), "kind": "love"}])
    assert out[0]["kind"] == "dead_letter" and "kind" in out[0]["reason"]
    p, _ = fold([sig(2), sig(2), sig(2)])
    assert p["signals"] == 1
    assert taste.score(p, "artists", "a1", T0) == pytest.approx(1.0, rel=1e-9)


def test_signals_from_play_events():
    base = {
        "event_id": "e",
        "occurred_at": T0,
        "play_id": "p9",
        "user_id": "u1",
        "track_id": "t1",
        "country": "DE",
        "product": "free",
    }
    done = taste.signals_from_play_event(
        {**base, "type": "play.completed", "ms_played": 200_000}, ["a"], ["g"]
    )
    assert [(s["event_id"], s["kind"]) for s in done] == [
        ("p9:stream", "stream"),
        ("p9:complete", "complete"),
    ]
    early_skip = taste.signals_from_play_event(
        {**base, "type": "play.skipped", "ms_played": 5_000}, ["a"], []
    )
    assert [s["kind"] for s in early_skip] == ["skip"]
    late_skip = taste.signals_from_play_event(
        {**base, "type": "play.skipped", "ms_played": 40_000}, ["a"], []
    )
    assert [s["kind"] for s in late_skip] == ["stream"]
    short = taste.signals_from_play_event(
        {**base, "type": "play.progress", "ms_played": 29_999, "context_uri": None}, [], []
    )
    assert short == []
    assert taste.signal_error(done[0]) is None


_signals = st.lists(
    st.builds(
        lambda n, kind, dt, track, artists, genres: sig(n, kind, T0 + dt, track, artists, genres),
        st.integers(0, 10_000),
        st.sampled_from(["stream", "complete", "skip"]),
        st.integers(-400 * DAY_MS, 400 * DAY_MS),
        st.sampled_from(["t1", "t2", "t3", "t4"]),
        st.lists(st.sampled_from(["a1", "a2", "a3"]), min_size=1, max_size=2),
        st.lists(st.sampled_from(["pop", "rock"]), max_size=2),
    ),
    max_size=15,
    unique_by=lambda s: s["event_id"],
)


PRUNING = TasteConfig(half_life_ms=DAY_MS, history_size=5, bucket_half_lives=8, horizon_buckets=4)


@settings(max_examples=150, deadline=None)
@given(signals=_signals, data=st.data(), cfg=st.sampled_from([TasteConfig(history_size=5), PRUNING]))
def test_profile_is_identical_in_any_order_with_duplicates(signals, data, cfg):
    order = data.draw(st.permutations(signals))
    dupes = data.draw(st.lists(st.sampled_from(signals), max_size=5)) if signals else []
    a, _ = fold(signals, config=cfg)
    b, _ = fold([*order, *dupes], config=cfg)
    if not signals:
        assert a is None and b is None
        return
    assert content(a) == content(b)
    h, span = cfg.half_life_ms, cfg.bucket_half_lives
    g_max = max((s["at"] // h) // span for s in signals)
    kept = [s for s in signals if (s["at"] // h) // span >= g_max - cfg.horizon_buckets]
    now = max(s["at"] for s in signals)
    w = cfg.weights
    for artist in ("a1", "a2", "a3"):
        expected = sum(w[s["kind"]] * 2 ** (-(now - s["at"]) / h) for s in kept if artist in s["artist_ids"])
        assert taste.score(b, "artists", artist, now, cfg) == pytest.approx(expected, rel=1e-6, abs=1e-9)
    newest = sorted(signals, key=lambda s: (s["at"], s["event_id"]))[-5:]
    assert [e[1] for e in b["history"]] == [s["event_id"] for s in newest]


def test_horizon_drops_only_negligible_signals_and_bounds_numbers():
    cfg = TasteConfig(half_life_ms=3_600_000)
    signals = [sig(i, at=T0 - i * 3_600_000 * 7, artists=["a1"]) for i in range(200)]
    p, _ = fold(signals, config=cfg)
    assert taste.score(p, "artists", "a1", T0, cfg) == pytest.approx(1 / (1 - 2**-7), rel=1e-9)
    assert max(len(v) for b in p["artists"].values() for v in b.values()) < 30  # decimal digits
    assert len(p["artists"]["a1"]) <= cfg.horizon_buckets + 1


# ------------------------------------------------------------------ co-occurrence and popularity


def _pairs_from(signals, listener_state=None, pair_states=None):
    listener_state = dict(listener_state or {})
    pair_states = dict(pair_states or {})
    for s in signals:
        listener_state[s["user_id"]], incs = taste.evolve_listener(listener_state.get(s["user_id"]), s)
        for inc in incs:
            pair_states[inc["key"]], _ = taste.evolve_pairs(pair_states.get(inc["key"]), inc)
    return listener_state, pair_states


_listens = st.lists(
    st.builds(
        lambda n, user, track, kind: sig(n, kind, T0, track, user=user),
        st.integers(0, 10_000),
        st.sampled_from(["u1", "u2", "u3"]),
        st.sampled_from(["t1", "t2", "t3", "t4"]),
        st.sampled_from(["stream", "complete", "skip"]),
    ),
    max_size=20,
    unique_by=lambda s: s["event_id"],
)


@settings(max_examples=150, deadline=None)
@given(signals=_listens, data=st.data())
def test_cooccurrence_counts_listeners_of_both_in_any_order(signals, data):
    order = data.draw(st.permutations(signals))
    _, pairs = _pairs_from([*order, *signals[:3]])
    streamed: dict[str, set[str]] = {}
    for s in signals:
        if s["kind"] != "skip":
            streamed.setdefault(s["user_id"], set()).add(s["track_id"])
    expected: dict[str, dict[str, int]] = {}
    for tracks in streamed.values():
        for a, b in combinations(sorted(tracks), 2):
            expected.setdefault(a, {})[b] = expected.setdefault(a, {}).get(b, 0) + 1
            expected.setdefault(b, {})[a] = expected.setdefault(b, {}).get(a, 0) + 1
    assert {t: s["counts"] for t, s in pairs.items()} == expected


def test_pair_increments_redelivered_count_once():
    _, incs = taste.evolve_listener({"user_id": "u1", "tracks": ["t1"]}, sig(1, track="t2"))
    assert {(i["track_id"], i["other"]) for i in incs} == {("t1", "t2"), ("t2", "t1")}
    state = None
    for inc in [*incs, *incs]:
        if inc["track_id"] == "t1":
            state, _ = taste.evolve_pairs(state, inc)
    assert state["counts"] == {"t2": 1}
    assert taste.cooccurring(state) == [("t2", 1)]


def test_popularity_counts_streams_per_country_once():
    state = None
    for s in [sig(1), sig(1), sig(2), sig(3, "skip"), sig(4, "complete")]:
        if taste.popularity_key(s) == "DE|t1":
            state, _ = taste.evolve_popularity(state, s)
    assert state["streams"] == 2
    assert taste.popularity_key(sig(5, country=None)) is None


# ------------------------------------------------------------------ home shelves


def _doc(tid, artists, genres=("pop",), title=None):
    return {
        "track_id": tid,
        "artist_ids": list(artists),
        "genres": list(genres),
        "title": title or tid.upper(),
    }


CATALOG = home.DictCatalog.from_documents(
    [
        _doc("a1-1", ["a1"]),
        _doc("a1-2", ["a1"]),
        _doc("a1-3", ["a1"]),
        _doc("a1-4", ["a1"]),
        _doc("a2-1", ["a2"], ["rock"]),
        _doc("a2-2", ["a2"], ["rock"]),
        _doc("a3-1", ["a3"], ["rock"]),
        _doc("a3-2", ["a3"], ["rock"]),
        _doc("a3-3", ["a3"], ["rock"]),
        _doc("bad-1", ["bad"], ["rock"]),
        _doc("feat", ["a1", "a3"], ["rock"]),
        _doc("blocked", ["a4"], ["rock"]),
    ],
    aliases={"a1-1-alias": "a1-1"},
)
POPULARITY = {
    "a1-2": 50,
    "a1-3": 50,
    "a1-4": 40,
    "a3-1": 30,
    "a3-2": 30,
    "a3-3": 5,
    "blocked": 99,
    "bad-1": 80,
    "a2-1": 10,
    "feat": 60,
}


def _rights(track_id, country, now_ms):
    assert country == "DE" and now_ms == T0
    return track_id != "blocked"


def test_cold_start_is_popular_in_country_filtered():
    shelves = home.home_shelves(None, CATALOG, _rights, POPULARITY, {}, "DE", T0, shelf_size=5)
    assert [s["id"] for s in shelves] == ["popular:DE"]
    # by popularity, ties by id; 'blocked' is not playable; 'feat' counts for a1 and a3, so after
    # a1-2 and a3-1 both artists are full and a1-3, a1-4, a3-2 are skipped
    assert shelves[0]["track_ids"] == ["bad-1", "feat", "a1-2", "a3-1", "a2-1"]
    assert shelves[0]["context"] == {"kind": "country", "ids": ["DE"]}


def test_warm_user_shelves_respect_all_filters():
    signals = [
        sig(1, track="a1-1-alias", artists=["a1"], genres=["pop"]),
        sig(2, track="a1-1", artists=["a1"], genres=["pop"], kind="complete"),
        sig(3, track="a3-3", artists=["a3"], genres=["rock"], at=T0 + 1),
        sig(4, track="bad-1", artists=["bad"], genres=["rock"], kind="skip"),
    ]
    profile, _ = fold(signals)
    cooc = {"a3-3": {"a2-2": 3, "a2-1": 3, "bad-1": 9, "a1-1": 5}}
    shelves = home.home_shelves(
        profile, CATALOG, _rights, POPULARITY, cooc, "DE", T0, shelf_size=4, top_genres=1
    )
    by_id = {s["id"]: s["track_ids"] for s in shelves}
    assert by_id == {
        "top-artists": ["feat", "a1-2", "a3-1"],  # a1 first (1.5 > 1.0), at most 2 per artist
        "genre:pop": ["a1-3", "a1-4"],  # a1-1 was just played (once under an alias id)
        "also:a3-3": ["a2-1", "a2-2"],  # ties by id; a1-1 was played, bad-1's artist is disliked
        "popular:DE": ["a3-2"],
    }
    assert list(by_id) == ["top-artists", "genre:pop", "also:a3-3", "popular:DE"]
    assert shelves[0]["context"] == {"kind": "artists", "ids": ["a1", "a3"]}
    seen = [t for s in shelves for t in s["track_ids"]]
    assert len(seen) == len(set(seen))  # never twice on the page
    assert not {"a1-1", "a3-3", "bad-1", "blocked"} & set(seen)  # recent (alias too), disliked, not playable
    for shelf in shelves:
        counts: dict[str, int] = {}
        for t in shelf["track_ids"]:
            for a in CATALOG.track(t)["artist_ids"]:
                counts[a] = counts.get(a, 0) + 1
        assert max(counts.values()) <= 2
    again = home.home_shelves(
        profile, CATALOG, _rights, POPULARITY, cooc, "DE", T0, shelf_size=4, top_genres=1
    )
    assert again == shelves
    assert math.isfinite(taste.score(profile, "artists", "a1", T0))
