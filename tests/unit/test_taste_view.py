"""The per-user taste fold the taste stage runs (processors/taste_view.py): redelivery by offset, client
duplicates, any interleaving of users, bounded documents, dead letters."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from processors import taste_view
from processors.grants import NONCE_CHARS, SIG_CHARS, VERSION

CATALOG = {"t1": ("t1", ["a1"], ["rock"]), "t1b": ("t1", ["a1"], ["rock"]), "t2": ("t2", ["a2"], ["jazz"]),
           "t3": ("t3", ["a1", "a2"], ["rock", "jazz"])}


def info(track_id: str) -> tuple[str, list[str], list[str]] | None:
    return CATALOG.get(track_id)


def grant(issued: int, user: str, track: str) -> str:
    return f"{VERSION}.{issued}.{'n' * NONCE_CHARS}.{user}.{track}.{'s' * SIG_CHARS}"


def play(i: int, user: str, track: str, kind: str, ms: int, at: int) -> dict:
    e = {"type": kind, "event_id": f"e{user}{i}{kind}", "user_id": user, "track_id": track, "occurred_at": at,
         "play_id": grant(1_700_000_000_000 + i, user, track), "ms_played": ms, "country": "DE",
         "product": "premium"}
    return e


def fold(events: list[tuple[int, dict]]) -> dict[str, dict]:
    states: dict[str, dict] = {}
    for offset, e in events:
        after, reason = taste_view.evolve(states.get(e["user_id"]), e, info, offset=offset)
        assert reason is None
        states[e["user_id"]] = after
    return states


def test_a_stream_a_completion_and_a_skip_land_where_expected() -> None:
    events = [play(1, "u", "t1b", "play.progress", 31_000, 1000), play(1, "u", "t1b", "play.completed", 200_000, 2000),
              play(2, "u", "t2", "play.skipped", 5_000, 3000)]
    s = fold(list(enumerate(events)))["u"]
    assert s["profile"]["signals"] == 3  # stream + complete of play 1, skip of play 2
    assert [h[2:] for h in s["profile"]["history"]] == [["t1", "stream"], ["t1", "complete"], ["t2", "skip"]]
    assert s["listened"] == ["t1"]  # a skip is not a stream
    assert s["profile"]["artists"].keys() == {"a1", "a2"} and s["offset"] == 2
    plays = dict(s["plays"])
    assert plays["t1"]["completed"] and plays["t1"]["ms_played"] == 200_000 and not plays["t2"]["completed"]
    assert list(plays) == ["t1", "t2"]  # most recent last
    view = taste_view.to_view(s)
    assert "seen" not in view["profile"] and "offset" not in view


def test_records_at_or_below_the_offset_are_not_folded_again() -> None:
    e1, e2 = play(1, "u", "t1", "play.completed", 200_000, 1), play(2, "u", "t2", "play.completed", 200_000, 2)
    s = fold([(10, e1), (11, e2)])["u"]
    again, _ = taste_view.evolve(s, {**e2, "play_id": grant(1_700_000_000_009, "u", "t2")}, info, offset=11)
    assert again is s  # redelivered offset: a no-op even though the content would count


def test_unknown_tracks_and_malformed_events() -> None:
    s, reason = taste_view.evolve(None, play(1, "u", "zz", "play.completed", 200_000, 1), info, offset=0)
    assert reason is None and s["listened"] == ["zz"] and s["profile"]["artists"] == {}
    same, reason = taste_view.evolve(s, {"type": "player.paused", "user_id": "u"}, info)
    assert same is s and reason == "not a listening event: 'player.paused'"
    same, reason = taste_view.evolve(s, play(2, "v", "t1", "play.completed", 200_000, 1), info)
    assert same is s and "reached the taste state of 'u'" in reason


def test_plays_per_user_are_bounded() -> None:
    events = [play(i, "u", "t1" if i % 2 else "t2", "play.started", 0, i) for i in range(3)]
    s = fold(list(enumerate(events)))["u"]
    assert len(s["plays"]) == 2
    big = {f"t{i}": {"play_id": "x", "issued_ms": i, "ms_played": 0, "completed": False} for i in range(5)}
    out = taste_view.note_play(big, play(9, "u", "new", "play.started", 0, 9), "new", cap=3)
    assert list(out) == ["t3", "t4", "new"]


plays_st = st.lists(
    st.tuples(st.sampled_from(["u1", "u2"]), st.sampled_from(["t1", "t1b", "t2", "t3"]),
              st.sampled_from([("play.progress", 31_000), ("play.completed", 200_000), ("play.skipped", 4_000)]),
              st.integers(0, 10**9)),
    min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(plays_st, st.randoms(use_true_random=False))
def test_profiles_do_not_depend_on_how_users_interleave_or_on_client_duplicates(rows, rnd) -> None:
    events = [play(i, u, t, k, ms, at) for i, (u, t, (k, ms), at) in enumerate(rows)]
    in_order = fold(list(enumerate(events)))
    # per user the order is the partition's order; users interleave arbitrarily; clients resend events
    by_user = {u: [e for e in events if e["user_id"] == u] for u in ("u1", "u2")}
    mixed, offset = [], 0
    queues = {u: list(es) for u, es in by_user.items()}
    while any(queues.values()):
        u = rnd.choice([u for u, q in queues.items() if q])
        e = queues[u].pop(0)
        for _ in range(rnd.choice([1, 1, 2])):  # a client duplicate: a new offset, the same event
            mixed.append((offset, e))
            offset += 1
    shuffled = fold(mixed)
    for u in in_order:
        a, b = in_order[u], shuffled[u]
        assert {k: v for k, v in a["profile"].items() if k != "seen"} == \
            {k: v for k, v in b["profile"].items() if k != "seen"}
        assert a["listened"] == b["listened"] and a["plays"] == b["plays"]
