"""Play assembly (processors/plays.py): the join of a play's events, in any order."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.plays import (
    PlayState,
    PlaySummary,
    absorb,
    apply_summary,
    evolve,
    merge_summaries,
    summaries_of,
)
from tests.unit.test_royalties import Events, T


def fold_plays(events: list[dict]) -> tuple[PlayState, list[PlaySummary]]:
    state, outs = PlayState(), []
    for e in events:
        state, out = evolve(state, e)
        outs.extend(out)
    return state, outs


def test_summary_of_a_started_play() -> None:
    ev = Events()
    events = [
        ev.play_event("started", "p1", "u1", "t1", T, country="SE", product="free", eid="s"),
        ev.play_event("progress", "p1", "u1", "t1", T + 10_000, 10_000),
        ev.play_event("skipped", "p1", "u1", "t1", T + 31_000, 31_000),
    ]
    state, outs = fold_plays(events)
    expected = PlaySummary("p1", "u1", "t1", "SE", "free", T, 31_000, True, "s", True)
    assert state.summary("p1") == expected
    assert outs[-1] == expected
    assert len(outs) == 3  # every event changed the summary here


def test_started_decides_over_an_earlier_progress_event() -> None:
    ev = Events()
    progress = ev.play_event("progress", "p1", "u1", "t9", T - 5_000, 40_000, country="DE", eid="a")
    started = ev.play_event("started", "p1", "u1", "t1", T, country="SE", eid="b")
    for order in ([progress, started], [started, progress]):
        s = fold_plays(order)[0].summary("p1")
        assert (s.user_id, s.track_id, s.country, s.play_time, s.ms, s.from_start) == (
            "u1",
            "t1",
            "SE",
            T,
            40_000,
            True,
        )


def test_play_without_started_takes_its_earliest_event() -> None:
    ev = Events()
    late = ev.play_event("completed", "p1", "u2", "t1", T + 50_000, 50_000, country="SE", eid="z")
    early = ev.play_event("progress", "p1", "u2", "t2", T, 20_000, country="DE", eid="y")
    s = fold_plays([late, early])[0].summary("p1")
    assert (s.user_id, s.track_id, s.country, s.play_time, s.ms, s.from_start, s.ended) == (
        "u2", "t2", "DE", T, 50_000, False, True,
    )  # fmt: skip


def test_no_output_when_nothing_changes() -> None:
    ev = Events()
    started = ev.play_event("started", "p1", "u1", "t1", T)
    later = ev.play_event("progress", "p1", "u1", "t1", T + 40_000, 40_000)
    smaller = ev.play_event("progress", "p1", "u1", "t1", T + 20_000, 20_000)
    state, outs = fold_plays([started, later, smaller, started, later])
    assert len(outs) == 2
    state, out = evolve(state, ev.make({"type": "player.resumed", "event_id": "x", "occurred_at": T,
                                        "user_id": "u1", "device_id": "d"}))  # fmt: skip
    assert out == []


def test_state_round_trips_through_json() -> None:
    ev = Events()
    state, _ = fold_plays(ev.play("p1") + ev.play("p2", user="u2"))
    again = PlayState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again.summaries() == state.summaries()
    assert PlaySummary.from_dict(json.loads(json.dumps(state.summary("p1").to_dict()))) == state.summary("p1")


def test_apply_summary_merges_like_the_events() -> None:
    ev = Events()
    a = ev.play_event("progress", "p1", "u1", "t1", T + 5, 35_000, eid="b")
    b = ev.play_event("started", "p1", "u1", "t1", T + 9, eid="c")
    s_a = fold_plays([a])[0].summary("p1")
    s_b = fold_plays([b])[0].summary("p1")
    whole = fold_plays([a, b])[0].summary("p1")
    assert merge_summaries(s_a, s_b) == merge_summaries(s_b, s_a) == whole
    state = PlayState()
    state, out1 = apply_summary(state, s_b)
    state, out2 = apply_summary(state, s_a)
    state, out3 = apply_summary(state, s_a)
    assert out2 == [whole] and out3 == [] and state.summary("p1") == whole


_KINDS = ["started", "progress", "skipped", "completed"]


@st.composite
def play_events(draw: st.DrawFn) -> list[dict]:
    ev = Events()
    n = draw(st.integers(1, 8))
    out = []
    for i in range(n):
        out.append(
            ev.play_event(
                draw(st.sampled_from(_KINDS)),
                draw(st.sampled_from(["p1", "p2"])),
                draw(st.sampled_from(["u1", "u2"])),
                draw(st.sampled_from(["t1", "t2"])),
                T + draw(st.integers(0, 3)),  # few instants: ties on occurred_at are common
                draw(st.integers(0, 60_000)),
                country=draw(st.sampled_from(["SE", "DE"])),
                eid=f"e{draw(st.integers(0, 99)):02d}-{i}",
            )
        )
    return out


@settings(max_examples=150, deadline=None)
@given(events=play_events(), data=st.data())
def test_summaries_do_not_depend_on_order_or_duplicates(events: list[dict], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(events))
    dups = data.draw(st.lists(st.sampled_from(events), max_size=5))
    assert fold_plays(shuffled + dups)[0].summaries() == fold_plays(events)[0].summaries()


@settings(max_examples=150, deadline=None)
@given(events=play_events(), data=st.data())
def test_batch_summaries_are_the_fold_of_evolve(events: list[dict], data: st.DataObject) -> None:
    """``summaries_of`` (the step the live plays stage and the replay fold both run) gives what folding
    ``evolve`` gives, and ``absorb`` reports a change exactly when ``evolve`` outputs one."""
    assert summaries_of(events) == fold_plays(events)[0].summaries()
    a, b = PlayState(), PlayState()
    for e in events:
        changed = absorb(a, e)
        _, out = evolve(b, e)
        assert (changed is not None) == bool(out)
        if out:
            assert out == [a.summary(e["play_id"])]
    # split into batches, merged downstream: the same plays
    cut = data.draw(st.integers(0, len(events)))
    merged = PlayState()
    for part in (events[:cut], events[cut:]):
        for s in summaries_of(part):
            apply_summary(merged, s)
    assert merged.summaries() == summaries_of(events)
