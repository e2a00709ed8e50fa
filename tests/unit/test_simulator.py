"""The listener simulator's decisions: population, taste -> skip/complete, ABR, the buffer, events."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from demo import model as sim
from schemas.codec import default_codec

GENRES = ["pop", "rock", "jazz", "techno"]
codec = default_codec()


def _listener(**kw) -> sim.Listener:
    base = dict(user_id="u1", country="DE", product="premium", device_id="d1", device_type="phone", profile="wifi",
                genre_weights={"pop": 0.9, "rock": 0.1, "jazz": 0.0, "techno": 0.0})
    base.update(kw)
    return sim.Listener(**base)


# -- population ------------------------------------------------------------------------------------
def test_population_is_deterministic_and_well_formed() -> None:
    a = sim.make_population(2000, 3, GENRES, artists=["ar1", "ar2", "ar3"])
    b = sim.make_population(2000, 3, GENRES, artists=["ar1", "ar2", "ar3"])
    assert a == b
    assert a != sim.make_population(2000, 4, GENRES, artists=["ar1", "ar2", "ar3"])
    assert len({u.user_id for u in a}) == 2000 and len({u.device_id for u in a}) == 2000
    countries = {c for c, _ in sim.COUNTRY_WEIGHTS}
    for u in a:
        assert u.country in countries
        assert u.product in ("free", "premium")
        assert u.profile in sim.PROFILES
        assert abs(sum(u.genre_weights.values()) - 1.0) < 1e-9
        assert set(u.favourite_artists) <= {"ar1", "ar2", "ar3"}
    premium = sum(u.product == "premium" for u in a) / len(a)
    assert 0.38 < premium < 0.52
    assert sum(u.profile == "3g" for u in a) > 200  # some listeners are on 3G-like links
    assert any(u.offline_rate > 0 for u in a)


def test_population_needs_genres() -> None:
    with pytest.raises(ValueError):
        sim.make_population(3, 1, [])


def test_registration_events_are_valid_events() -> None:
    users = sim.make_population(20, 1, GENRES)
    events = sim.registration_events(users, 1_795_000_000_000)
    assert len(events) == 40
    for e in events:
        assert codec.from_json(codec.to_json(e)) == e
    devices = [e for e in events if e["type"] == "device.registered"]
    assert {(e["user_id"], e["device_id"]) for e in devices} == {(u.user_id, u.device_id) for u in users}


# -- taste -----------------------------------------------------------------------------------------
def test_affinity_follows_genres_and_favourite_artists() -> None:
    u = _listener(favourite_artists=("ar9",))
    liked = sim.TrackInfo("t1", 200_000, ("pop",), ("ar1",))
    disliked = sim.TrackInfo("t2", 200_000, ("jazz",), ("ar2",))
    fav = sim.TrackInfo("t3", 200_000, ("jazz",), ("ar9",))
    assert sim.affinity(u, liked) > sim.affinity(u, disliked)
    assert sim.affinity(u, fav) > sim.affinity(u, disliked)
    for t in (liked, disliked, fav):
        assert 0.0 <= sim.affinity(u, t) <= 1.0
        assert 0.02 <= sim.skip_probability(u, t) <= 0.95


def test_listeners_skip_what_they_dislike_more_often() -> None:
    u = _listener()
    liked = sim.TrackInfo("t1", 180_000, ("pop",))
    disliked = sim.TrackInfo("t2", 180_000, ("jazz",))
    rng = random.Random(5)
    skips_liked = sum(sim.listen_outcome(rng, u, liked)[0] == "skipped" for _ in range(2000))
    skips_disliked = sum(sim.listen_outcome(rng, u, disliked)[0] == "skipped" for _ in range(2000))
    assert skips_disliked > skips_liked + 400


@given(st.integers(2, 600_000), st.integers(0, 2**32), st.floats(-0.2, 0.2))
@settings(max_examples=150, deadline=None)
def test_listen_outcome_ms_is_within_the_track(duration: int, seed: int, bias: float) -> None:
    u = _listener(skip_bias=bias)
    outcome, ms = sim.listen_outcome(random.Random(seed), u, sim.TrackInfo("t", duration, ("rock",)))
    if outcome == "completed":
        assert ms == duration
    else:
        assert outcome == "skipped"
        assert 1 <= ms < duration


def test_choose_track_prefers_liked_tracks_and_honours_avoid() -> None:
    u = _listener()
    tracks = [sim.TrackInfo("pop1", 1, ("pop",)), sim.TrackInfo("jazz1", 1, ("jazz",))]
    rng = random.Random(1)
    picks = [sim.choose_track(rng, u, tracks).track_id for _ in range(1000)]
    assert picks.count("pop1") > 800
    assert all(sim.choose_track(rng, u, tracks, avoid="pop1").track_id == "jazz1" for _ in range(50))
    assert sim.choose_track(rng, u, tracks[:1], avoid="pop1").track_id == "pop1"  # nothing else to play
    with pytest.raises(ValueError):
        sim.choose_track(rng, u, [])


def test_session_plan_bounds() -> None:
    rng = random.Random(2)
    offline = _listener(offline_rate=1.0)
    for _ in range(500):
        p = sim.session_plan(rng, _listener())
        assert 1 <= p.tracks <= 12 and 5_000 <= p.gap_before_ms <= 120_000 and not p.offline
    assert sim.session_plan(rng, offline).offline


# -- events of a play ------------------------------------------------------------------------------
def test_progress_points() -> None:
    assert sim.progress_points(45_000) == [10_000, 20_000, 30_000, 40_000]
    assert sim.progress_points(40_000) == [10_000, 20_000, 30_000]
    assert sim.progress_points(9_999) == []


@pytest.mark.parametrize("outcome,ms", [("completed", 45_000), ("skipped", 12_345), ("skipped", 1)])
def test_play_events_are_valid_and_ordered(outcome: str, ms: int) -> None:
    u = _listener()
    events = sim.play_events(u, "t1", "p1", 1_795_000_000_000, outcome, ms, offline=True, stall_ms=[0, 2_000, 0, 500])
    assert events[0]["type"] == "play.started" and events[0]["offline"] is True
    assert events[-1]["type"] == ("play.completed" if outcome == "completed" else "play.skipped")
    assert events[-1]["ms_played"] == ms
    assert len({e["event_id"] for e in events}) == len(events)
    times = [e["occurred_at"] for e in events]
    assert times == sorted(times)
    played = [e["ms_played"] for e in events[1:]]
    assert played == sorted(played)
    for e in events:
        assert codec.from_json(codec.to_json(e)) == {**e, "received_at": None}  # set by the API only
        assert (e["user_id"], e["country"], e["product"], e["play_id"]) == ("u1", "DE", "premium", "p1")


def test_stalls_delay_the_later_events() -> None:
    u = _listener()
    plain = sim.play_events(u, "t1", "p1", 0, "completed", 30_000)
    stalled = sim.play_events(u, "t1", "p1", 0, "completed", 30_000, stall_ms=[0, 3_000, 0, 0])
    assert [e["occurred_at"] for e in plain] == [0, 10_000, 20_000, 30_000]
    assert [e["occurred_at"] for e in stalled] == [0, 13_000, 23_000, 33_000]


# -- ABR and the buffer ----------------------------------------------------------------------------
LADDER = [96, 160, 320]


def test_choose_rung_starts_low_and_refills_low() -> None:
    assert sim.choose_rung(LADDER, None, 30.0) == 0
    assert sim.choose_rung(LADDER, 50_000, 0.0) == 0
    assert sim.choose_rung(LADDER, 50_000, sim.LOW_BUFFER_S - 0.1) == 0
    assert sim.choose_rung(LADDER, 50_000, 10.0) == 2
    assert sim.choose_rung(LADDER, 200, 10.0) == 0  # budget 0.75 x 200 = 150 kbps: only 96 fits
    assert sim.choose_rung(LADDER, 400, 10.0) == 1  # budget 300: 160
    assert sim.choose_rung(LADDER, 400, 25.0) == 2  # comfortable buffer: the whole estimate, 320 fits
    assert sim.choose_rung(LADDER, 50, 25.0) == 0  # below every rung: still the lowest
    with pytest.raises(ValueError):
        sim.choose_rung([], 100, 10.0)


@given(st.lists(st.integers(16, 2000), min_size=1, max_size=6, unique=True).map(sorted),
       st.floats(16, 1e5), st.floats(16, 1e5), st.floats(0, 60))
@settings(max_examples=200, deadline=None)
def test_choose_rung_is_monotone_in_bandwidth_and_within_budget(rungs, bw1, bw2, buffer_s) -> None:
    lo, hi = sorted((bw1, bw2))
    a, b = sim.choose_rung(rungs, lo, buffer_s), sim.choose_rung(rungs, hi, buffer_s)
    assert 0 <= a <= b < len(rungs)
    if a > 0:  # a rung above the lowest is only taken when the estimate affords it
        assert rungs[a] <= lo


def test_first_download_is_startup_not_rebuffer() -> None:
    b = sim.download(sim.Buffer(), 3.0, 10.0)
    assert (b.started, b.startup_s, b.rebuffers, b.stall_s, b.level_s) == (True, 3.0, 0, 0.0, 10.0)


def test_slow_download_stalls_once() -> None:
    b = sim.download(sim.Buffer(), 1.0, 10.0)
    b = sim.download(b, 14.0, 10.0)  # 10 s buffered, 14 s to download: a 4 s stall
    assert b.rebuffers == 1 and b.stall_s == pytest.approx(4.0) and b.level_s == pytest.approx(10.0)
    b = sim.download(b, 2.0, 10.0)  # fast again: no stall
    assert b.rebuffers == 1 and b.level_s == pytest.approx(18.0)


@given(st.lists(st.floats(0, 40), min_size=1, max_size=30), st.floats(1, 10))
@settings(max_examples=200, deadline=None)
def test_buffer_accounting(downloads: list[float], segment_s: float) -> None:
    b = sim.Buffer()
    for d in downloads:
        b = sim.download(b, d, segment_s)
        assert b.level_s >= -1e-9
        assert b.level_s <= 30.0 + segment_s + 1e-6
    # every downloaded second is either played or still buffered
    assert b.played_s + b.level_s == pytest.approx(len(downloads) * segment_s)
    assert b.stall_s == pytest.approx(sum(b.stalls_by_segment))
    assert b.rebuffers == sum(1 for s in b.stalls_by_segment if s > 0)


def test_segments_needed() -> None:
    assert sim.segments_needed(45_000, 10_000, 5) == 5
    assert sim.segments_needed(10_000, 10_000, 5) == 1
    assert sim.segments_needed(10_001, 10_000, 5) == 2
    assert sim.segments_needed(1, 10_000, 5) == 1
    assert sim.segments_needed(900_000, 10_000, 5) == 5


def test_bandwidth_profiles() -> None:
    rng = random.Random(3)
    three_g = [sim.sample_bandwidth(rng, sim.PROFILES["3g"]) for _ in range(3000)]
    wifi = [sim.sample_bandwidth(rng, sim.PROFILES["wifi"]) for _ in range(3000)]
    assert min(three_g) >= 16 and min(wifi) >= 16
    assert sum(three_g) / len(three_g) < sum(wifi) / len(wifi) / 10
    assert sum(x < 96 for x in three_g) > 100  # a 3G-like link sometimes cannot sustain even the lowest rung
    assert sim.estimate_bandwidth(None, 100.0) == 100.0
    assert sim.estimate_bandwidth(100.0, 200.0) == pytest.approx(130.0)


def test_percentiles() -> None:
    assert sim.percentiles([]) == {"n": 0}
    p = sim.percentiles([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert (p["n"], p["p50"], p["p95"], p["p99"], p["max"]) == (100, 50.0, 95.0, 99.0, 100.0)


def test_stats_summary_ratios() -> None:
    s = sim.Stats(plays=4, completed=3, skipped=1, stall_s=5.0, played_s=95.0)
    s.latency("home", 0.010)
    out = s.summary()
    assert out["rebuffer_ratio"] == pytest.approx(0.05)
    assert out["latency_ms"]["home"]["p50"] == 10.0
