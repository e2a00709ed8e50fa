"""Rights fold: rule 3 (latest rights.changed at play time) and rule 4 (takedowns), exactly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from processors import rights
from schemas.codec import default_codec

CODEC = default_codec()


def ev(etype: str, at: int, eid: str, **fields) -> dict:
    event = {"type": etype, "event_id": eid, "occurred_at": at, **fields}
    assert CODEC.from_json(CODEC.to_json(event)) == event
    return event


def changed(at, eid, track_id="t1", territory="DE", allowed=True, valid_from=None, valid_to=None):
    return ev(
        "rights.changed",
        at,
        eid,
        track_id=track_id,
        territory=territory,
        allowed=allowed,
        valid_from=valid_from,
        valid_to=valid_to,
    )


def down(at, eid, territories, track_id="t1"):
    return ev("track.taken_down", at, eid, track_id=track_id, territories=territories, reason="legal")


def build(events) -> dict[str, dict]:
    view: dict[str, dict] = {}
    for e in events:
        view[e["track_id"]], _ = rights.evolve(view.get(e["track_id"]), e)
    return view


def test_no_rights_means_not_playable():
    assert rights.allowed_at({}, "t1", "DE", 1000) is False
    view = build([changed(100, "e1", territory="FR")])
    assert rights.allowed_at(view, "t1", "DE", 1000) is False


def test_latest_change_at_or_before_t_decides():
    view = build([changed(100, "e1", allowed=True), changed(200, "e2", allowed=False), changed(300, "e3")])
    assert rights.allowed_at(view, "t1", "DE", 99) is False  # nothing in force yet
    assert rights.allowed_at(view, "t1", "DE", 100) is True  # occurred_at <= t is inclusive
    assert rights.allowed_at(view, "t1", "DE", 250) is False
    assert rights.allowed_at(view, "t1", "DE", 300) is True


def test_validity_window_inclusive_from_exclusive_to():
    view = build([changed(0, "e1", valid_from=1000, valid_to=2000)])
    assert [rights.allowed_at(view, "t1", "DE", t) for t in (999, 1000, 1999, 2000)] == [
        False,
        True,
        True,
        False,
    ]


def test_same_time_tie_broken_by_event_id():
    view = build([changed(100, "e-b", allowed=False), changed(100, "e-a", allowed=True)])
    assert rights.allowed_at(view, "t1", "DE", 100) is False  # (100, "e-b") is the latest


def test_takedown_by_country_or_star_from_its_event_time():
    view = build(
        [changed(0, "e1"), changed(0, "e2", territory="FR"), down(500, "d1", ["DE"]), down(900, "d2", ["*"])]
    )
    assert rights.allowed_at(view, "t1", "DE", 499) is True
    assert rights.allowed_at(view, "t1", "DE", 500) is False
    assert rights.allowed_at(view, "t1", "DE", 500, takedowns=False) is True
    assert rights.allowed_at(view, "t1", "FR", 899) is True
    assert rights.allowed_at(view, "t1", "FR", 900) is False


def test_alias_events_count_for_the_logical_track():
    view = build(
        [changed(100, "e1", track_id="t1", allowed=True), changed(200, "e2", track_id="t1-x", allowed=False)]
    )
    assert rights.allowed_at(view, ["t1", "t1-x"], "DE", 250) is False  # the alias' later change wins
    assert rights.allowed_at(view, "t1", "DE", 250) is True  # asked about one upload only
    view = build([changed(0, "e1"), down(300, "d1", ["*"], track_id="t1-x")])
    assert rights.allowed_at(view, ["t1", "t1-x"], "DE", 300) is False


def test_is_playable_and_playability_matrix_now():
    view = build(
        [
            changed(0, "e1"),
            changed(0, "e2", territory="FR", allowed=False),
            changed(0, "e3", territory="SE"),
            down(10, "d1", ["SE"]),
        ]
    )
    assert rights.is_playable(view, "t1", "DE", 20) is True
    assert rights.playability(view, "t1", 20) == {"DE": True, "FR": False, "SE": False}
    assert rights.playability(view, "t1", 5) == {"DE": True, "FR": False, "SE": True}


def test_duplicates_are_no_ops_and_input_not_mutated():
    state, out = rights.evolve(None, changed(1, "e1"))
    assert out[0]["kind"] == "view" and out[0]["key"] == "t1"
    frozen = repr(state)
    same, out = rights.evolve(state, changed(1, "e1"))
    assert same == state and out == []
    rights.evolve(state, changed(2, "e2"))
    rights.evolve(state, down(3, "d1", ["*"]))
    assert repr(state) == frozen


def test_other_events_are_dead_lettered():
    _, out = rights.evolve(
        None, {"type": "play.started", "event_id": "x", "occurred_at": 1, "track_id": "t1"}
    )
    assert out[0]["kind"] == "dead_letter"
    state, _ = rights.evolve(None, changed(1, "e1"))
    _, out = rights.evolve(state, changed(1, "e2", track_id="t2"))
    assert out[0]["kind"] == "dead_letter"


def _reference(events, track_ids, territory, t) -> bool:
    """royalties.md rules 3 and 4 read literally."""
    ids = set(track_ids)
    rc = [
        e
        for e in events
        if e["type"] == "rights.changed"
        and e["track_id"] in ids
        and e["territory"] == territory
        and e["occurred_at"] <= t
    ]
    if not rc:
        return False
    latest = max(rc, key=lambda e: (e["occurred_at"], e["event_id"]))
    ok = (
        latest["allowed"]
        and (latest["valid_from"] is None or latest["valid_from"] <= t)
        and (latest["valid_to"] is None or t < latest["valid_to"])
    )
    downs = [
        e
        for e in events
        if e["type"] == "track.taken_down"
        and e["track_id"] in ids
        and e["occurred_at"] <= t
        and (territory in e["territories"] or "*" in e["territories"])
    ]
    return ok and not downs


_times = st.integers(0, 40)
_window = st.tuples(st.none() | _times, st.none() | _times).map(
    lambda w: (w[0], w[1]) if w[0] is None or w[1] is None or w[0] <= w[1] else (w[1], w[0])
)
_event = st.one_of(
    st.builds(
        lambda at, n, tid, terr, ok, w: changed(at, f"r{n:02d}", tid, terr, ok, *w),
        _times,
        st.integers(0, 99),
        st.sampled_from(["t1", "t1-x"]),
        st.sampled_from(["DE", "FR"]),
        st.booleans(),
        _window,
    ),
    st.builds(
        lambda at, n, tid, terr: down(at, f"d{n:02d}", terr, tid),
        _times,
        st.integers(0, 99),
        st.sampled_from(["t1", "t1-x"]),
        st.sampled_from([["DE"], ["FR"], ["*"]]),
    ),
)


@settings(max_examples=150, deadline=None)
@given(events=st.lists(_event, max_size=12, unique_by=lambda e: e["event_id"]), data=st.data())
def test_allowed_at_matches_the_rules_in_any_order(events, data):
    order = data.draw(st.permutations(events))
    dupes = data.draw(st.lists(st.sampled_from(events), max_size=4)) if events else []
    view = build([*order, *dupes])
    assert view == build(events)
    for ids in (["t1", "t1-x"], ["t1"]):
        for territory in ("DE", "FR"):
            for t in range(0, 42, 3):
                assert rights.allowed_at(view, ids, territory, t) == _reference(events, ids, territory, t)
