"""Recently played and top items from history and taste profiles (processors/top_items.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors import taste, top_items
from processors.rules import DAY_MS

NOW = 1_780_000_000_000


def entry(play: str, kind: str, track: str, at: int) -> dict:
    return {"event_id": f"{play}:{kind}", "kind": kind, "track_id": track, "at": at}


def test_plays_fold_a_playback_into_one_and_leave_out_early_skips() -> None:
    history = [  # most recent first, as ReplicaState.history gives it
        entry("p3", "skip", "t3", NOW - 1_000),
        entry("p2", "complete", "t2", NOW - 2_000),
        entry("p2", "stream", "t2", NOW - 50_000),
        entry("p1", "stream", "t1", NOW - 90_000),
        {"event_id": "legacy", "kind": "stream", "track_id": "t0", "at": NOW - 99_000},
    ]
    assert top_items.plays(history) == [
        {"play": "p2", "track_id": "t2", "played_at": NOW - 2_000},
        {"play": "p1", "track_id": "t1", "played_at": NOW - 90_000},
        {"play": "legacy", "track_id": "t0", "played_at": NOW - 99_000},
    ]


def test_cursor_pages_before_and_after() -> None:
    items = [{"play": f"p{i}", "track_id": "t", "played_at": 100 - i * 10} for i in range(6)]  # 100, 90 ... 50
    page, more = top_items.cursor_page(items, 2)
    assert [p["played_at"] for p in page] == [100, 90] and more
    page, more = top_items.cursor_page(items, 2, before=90)
    assert [p["played_at"] for p in page] == [80, 70] and more
    page, more = top_items.cursor_page(items, 3, before=70)
    assert [p["played_at"] for p in page] == [60, 50] and not more
    page, more = top_items.cursor_page(items, 2, after=60)  # the two just after 60, newest first
    assert [p["played_at"] for p in page] == [80, 70] and more
    page, more = top_items.cursor_page(items, 2, after=80)
    assert [p["played_at"] for p in page] == [100, 90] and not more


def test_top_tracks_count_plays_in_the_window() -> None:
    history = [
        entry("a", "stream", "t1", NOW - 1 * DAY_MS),
        entry("b", "stream", "t2", NOW - 2 * DAY_MS),
        entry("c", "stream", "t2", NOW - 3 * DAY_MS),
        entry("c", "complete", "t2", NOW - 3 * DAY_MS + 1),  # the same play: counts once
        entry("d", "stream", "t3", NOW - 40 * DAY_MS),
        entry("e", "stream", "t3", NOW - 41 * DAY_MS),
        entry("f", "stream", "t3", NOW - 42 * DAY_MS),
        entry("g", "stream", "t4", NOW - 300 * DAY_MS),
        entry("h", "skip", "t5", NOW - 1),
    ]
    assert top_items.top_tracks(history, NOW, "short_term") == ["t2", "t1"]
    assert top_items.top_tracks(history, NOW, "medium_term") == ["t3", "t2", "t1"]
    assert top_items.top_tracks(history, NOW, "long_term") == ["t3", "t2", "t1", "t4"]
    with pytest.raises(ValueError):
        top_items.top_tracks(history, NOW, "forever")


def test_top_artists_follow_the_taste_ranking_within_the_horizon() -> None:
    def signal(i: int, artist: str, days_ago: float) -> dict:
        return {"event_id": f"s{i}", "user_id": "u", "track_id": f"t{i}", "artist_ids": [artist], "genres": [],
                "kind": "stream", "at": int(NOW - days_ago * DAY_MS), "country": "DE"}

    profile = None
    signals = [signal(1, "recent", 20), signal(2, "old", 40), signal(7, "ancient", 300),
               *(signal(10 + k, "heavy", 60) for k in range(4))]
    for s in signals:
        profile, _ = taste.evolve(profile, s)
    # thresholds (one stream at the window's edge): 2^(-28/30) = 0.52, 2^(-182/30) = 0.015, 2^(-365/30) = 0.0002
    # affinities now: heavy 4 x 2^(-2) = 1.0, recent 2^(-20/30) = 0.63, old 2^(-40/30) = 0.40, ancient 2^(-10)
    assert top_items.top_artists(profile, NOW, "short_term") == ["heavy", "recent"]
    assert top_items.top_artists(profile, NOW, "medium_term") == ["heavy", "recent", "old"]
    assert top_items.top_artists(profile, NOW, "long_term") == ["heavy", "recent", "old", "ancient"]
    assert top_items.top_artists(None, NOW, "long_term") == []


@given(st.lists(st.integers(0, 10_000), unique=True, max_size=40), st.integers(1, 7))
def test_paging_with_before_cursors_visits_every_play_once_newest_first(times: list[int], limit: int) -> None:
    history = [entry(f"p{i}", "stream", f"t{i % 3}", at) for i, at in enumerate(times)]
    everything = top_items.plays(history)
    seen, before = [], None
    while True:
        page, more = top_items.cursor_page(everything, limit, before=before)
        seen.extend(p["played_at"] for p in page)
        if not more:
            break
        before = page[-1]["played_at"]
    assert seen == sorted(times, reverse=True)
    seen, after = [], -1  # and forwards, from the oldest, with after cursors
    while True:
        page, more = top_items.cursor_page(everything, limit, after=after)
        seen[:0] = [p["played_at"] for p in page]
        if not more:
            break
        after = page[0]["played_at"]
    assert seen == sorted(times, reverse=True)
