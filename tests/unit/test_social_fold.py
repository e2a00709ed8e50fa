"""The library fold's follows and private sessions (processors/library.py): order-free, idempotent,
and what it answers agrees with a brute-force model over the same events."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from processors import library

U = "u1"
targets = st.sampled_from([("artist", "a1"), ("artist", "a2"), ("user", "u2"), ("playlist", "p1")])


@st.composite
def event(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 10_000))
    at = draw(st.integers(0, 50))  # few distinct times: ties on occurred_at, broken by event_id
    kind = draw(st.sampled_from(["followed", "unfollowed", "private", "starred"]))
    base = {"event_id": f"e{n:05d}", "occurred_at": at, "user_id": U}
    if kind == "private":
        return {**base, "type": library.PRIVATE_SESSION, "enabled": draw(st.booleans())}
    if kind == "starred":
        return {**base, "type": "library.starred", "item_type": "track", "item_id": "t1"}
    ttype, tid = draw(targets)
    out = {**base, "type": f"library.{kind}", "target_type": ttype, "target_id": tid}
    if kind == "followed":
        out["public"] = draw(st.booleans())
    return out


def fold(events: list[dict]) -> dict | None:
    state = None
    for e in events:
        state, outputs = library.evolve(state, e)
        assert not any(o["kind"] == "dead_letter" for o in outputs)
    return state


def unique(events: list[dict]) -> list[dict]:
    """One event per event_id (a repeated id is the same event delivered twice)."""
    return list({e["event_id"]: e for e in events}.values())


@settings(max_examples=200, deadline=None)
@given(events=st.lists(event(), max_size=30), data=st.data())
def test_any_order_and_duplicates_give_the_same_state(events: list[dict], data: st.DataObject) -> None:
    events = unique(events)
    shuffled = data.draw(st.permutations(events))
    dupes = data.draw(st.lists(st.sampled_from(events), max_size=10)) if events else []
    assert fold(events) == fold([*shuffled, *dupes]) == fold([*dupes, *events])


@settings(max_examples=200, deadline=None)
@given(events=st.lists(event(), max_size=30), probe=st.integers(-1, 52))
def test_answers_agree_with_a_brute_force_model(events: list[dict], probe: int) -> None:
    events = unique(events)
    state = fold(events)
    follows = [e for e in events if e["type"] in library.FOLLOW_TYPES]
    for ttype in ("artist", "user", "playlist"):
        expected = set()
        for tid in {e["target_id"] for e in follows if e["target_type"] == ttype}:
            mine = [e for e in follows if (e["target_type"], e["target_id"]) == (ttype, tid)]
            latest = max(mine, key=lambda e: (e["occurred_at"], e["event_id"]))
            if latest["type"] == "library.followed":
                expected.add(tid)
        assert {t for t, _ in library.following(state, ttype)} == expected
    toggles = [e for e in events if e["type"] == library.PRIVATE_SESSION and e["occurred_at"] <= probe]
    latest_toggle = max(toggles, key=lambda e: (e["occurred_at"], e["event_id"])) if toggles else None
    assert library.private_at(state, probe) == bool(latest_toggle and latest_toggle["enabled"])


def test_an_older_follow_arriving_after_the_unfollow_does_not_bring_it_back() -> None:
    follow = {"type": "library.followed", "event_id": "e1", "occurred_at": 10, "user_id": U,
              "target_type": "artist", "target_id": "a1", "public": True}
    unfollow = {"type": "library.unfollowed", "event_id": "e2", "occurred_at": 20, "user_id": U,
                "target_type": "artist", "target_id": "a1"}
    state = fold([unfollow, follow])
    assert library.following(state, "artist") == []
    assert not library.follows(state, "artist", "a1")
    assert library.follows(fold([follow]), "artist", "a1")
    assert library.following(fold([follow]), "artist") == [("a1", 10)]


def test_private_session_intervals_by_event_time() -> None:
    on = {"type": library.PRIVATE_SESSION, "event_id": "p1", "occurred_at": 100, "user_id": U, "enabled": True}
    off = {"type": library.PRIVATE_SESSION, "event_id": "p2", "occurred_at": 200, "user_id": U, "enabled": False}
    state = fold([off, on])  # the end arrives first
    assert [library.private_at(state, t) for t in (99, 100, 150, 199, 200, 300)] == [
        False, True, True, True, False, False]
    assert not library.private_now(state)
    assert library.private_now(fold([on]))


def test_the_newest_toggles_are_kept_whatever_the_order(monkeypatch) -> None:
    monkeypatch.setattr(library, "PRIVATE_KEPT", 3)
    toggles = [{"type": library.PRIVATE_SESSION, "event_id": f"p{i}", "occurred_at": i * 10, "user_id": U,
                "enabled": i % 2 == 0} for i in range(6)]
    forward, backward = fold(toggles), fold(list(reversed(toggles)))
    assert forward == backward
    assert [r[1] for r in forward["private"]] == ["p3", "p4", "p5"]


def test_old_documents_without_follows_still_fold_and_read_as_empty() -> None:
    old_doc = {"user_id": U, "items": {"track:t1": {"at": 1, "event_id": "s1", "starred": True}}}
    assert library.following(old_doc, "artist") == [] and not library.private_at(old_doc, 5)
    state, out = library.evolve(old_doc, {"type": "library.followed", "event_id": "e1", "occurred_at": 2,
                                          "user_id": U, "target_type": "user", "target_id": "u2", "public": True})
    assert library.following(state, "user") == [("u2", 2)] and state["items"] == old_doc["items"]
    assert out[0]["view"]["follows"]["user:u2"]["following"] is True
