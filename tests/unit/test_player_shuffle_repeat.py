"""The player fold's shuffle and repeat (processors/player.py): play order, wrap, replay agreement."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from processors import player
from schemas.codec import default_codec

CODEC = default_codec()


def ev(etype: str, eid: str, at: int = 1_000, **fields) -> dict:
    event = {"type": etype, "event_id": eid, "occurred_at": at, "user_id": "u1", **fields}
    assert CODEC.from_json(CODEC.to_json(event)) == event  # a valid event of the registered schema
    return event


def play(eid: str, tracks: list[str], offset: int = 0) -> dict:
    return ev("player.play_requested", eid, device_id="d1", track_ids=tracks, context_uri=None, offset=offset,
              position_ms=0)


def nxt(eid: str) -> dict:
    return ev("player.skipped_to", eid, device_id="d1", direction="next")


def prev(eid: str) -> dict:
    return ev("player.skipped_to", eid, device_id="d1", direction="previous")


def shuffle(eid: str, on: bool) -> dict:
    return ev("player.shuffle_set", eid, device_id="d1", shuffle=on)


def repeat(eid: str, mode: str) -> dict:
    return ev("player.repeat_set", eid, device_id="d1", repeat=mode)


def fold(events: list[dict], state: dict | None = None) -> tuple[dict, list[dict]]:
    outputs: list[dict] = []
    for e in events:
        state, out = player.evolve(state, e)
        outputs.extend(out)
    assert state is not None
    return state, outputs


def dead(outputs: list[dict]) -> list[str]:
    return [o["reason"] for o in outputs if o["kind"] == "dead_letter"]


def walk_next(state: dict, n: int, prefix: str = "n") -> tuple[dict, list[str]]:
    """Skip next n times; the items visited."""
    items = []
    for i in range(n):
        state, out = player.evolve(state, nxt(f"{prefix}{i}"))
        assert not dead(out)
        items.append(state["item"])
    return state, items


def reference_order(n: int, first: int, seed: str) -> list[int]:
    """The documented permutation, written again from the docstring: Fisher-Yates over the other
    indices, j = first 8 bytes of SHA-256("<seed>:<i>") big-endian mod (i + 1)."""
    rest = [i for i in range(n) if i != first]
    for i in range(len(rest) - 1, 0, -1):
        j = int.from_bytes(hashlib.sha256(f"{seed}:{i}".encode()).digest()[:8], "big") % (i + 1)
        rest[i], rest[j] = rest[j], rest[i]
    return [first, *rest]


TRACKS = [f"t{i}" for i in range(8)]


def test_defaults_and_view_show_shuffle_and_repeat_off() -> None:
    state, _ = fold([play("p", TRACKS)])
    view = player.to_view(state)
    assert view["shuffle_state"] is False and view["repeat_state"] == "off"
    state, _ = fold([shuffle("s", True), repeat("r", "context")], state)
    view = player.to_view(state)
    assert view["shuffle_state"] is True and view["repeat_state"] == "context"


def test_shuffle_keeps_current_and_plays_the_rest_in_the_seeded_order() -> None:
    state, _ = fold([play("p", TRACKS, offset=2), shuffle("shuf-1", True)])
    assert state["item"] == "t2"
    order = reference_order(8, 2, "shuf-1")
    expected = [TRACKS[i] for i in order[1:]]
    assert player.upcoming(state) == expected
    _, items = walk_next(state, 7)
    assert items == expected
    assert sorted(items) == sorted(t for t in TRACKS if t != "t2")


def test_shuffle_off_returns_to_context_order_after_the_current_item() -> None:
    state, _ = fold([play("p", TRACKS), shuffle("s", True)])
    state, items = walk_next(state, 2)
    current = items[-1]
    state, _ = fold([shuffle("s-off", False)], state)
    assert state["item"] == current
    k = TRACKS.index(current)
    assert player.upcoming(state) == TRACKS[k + 1:]


def test_play_while_shuffled_is_shuffled_by_the_play_event_id() -> None:
    state, _ = fold([shuffle("s", True), play("play-7", TRACKS, offset=5)])
    assert state["item"] == "t5"
    assert player.upcoming(state) == [TRACKS[i] for i in reference_order(8, 5, "play-7")[1:]]


def test_repeat_track_replays_the_same_item_and_the_queue_waits() -> None:
    queued = ev("player.queued", "q", track_id="tq")
    state, _ = fold([play("p", TRACKS, offset=3), queued, repeat("r", "track")])
    state, items = walk_next(state, 3)
    assert items == ["t3", "t3", "t3"] and state["position_ms"] == 0 and state["queue"] == ["tq"]
    state, _ = fold([repeat("r-off", "off")], state)
    state, items = walk_next(state, 2, "m")
    assert items == ["tq", "t4"]


def test_repeat_context_wraps_both_ways_off_refuses_next_at_the_end() -> None:
    tracks = ["a", "b", "c"]
    state, _ = fold([play("p", tracks, offset=2)])
    _, out = player.evolve(state, nxt("x"))
    assert dead(out) and "no next track" in dead(out)[0]
    state, _ = fold([repeat("r", "context")], state)
    state, items = walk_next(state, 4)
    assert items == ["a", "b", "c", "a"]
    state, _ = fold([prev("b1"), prev("b2")], state)  # a -> (wrap) c -> b
    assert state["item"] == "b"


def test_repeat_context_with_shuffle_wraps_to_the_first_of_the_shuffled_order() -> None:
    state, _ = fold([play("p", TRACKS), shuffle("s", True), repeat("r", "context")])
    order = [TRACKS[i] for i in reference_order(8, 0, "s")]
    _, items = walk_next(state, 9)
    assert items == order[1:] + order[:2]


def test_bad_repeat_state_is_dead_lettered_and_changes_nothing() -> None:
    state, _ = fold([play("p", TRACKS)])
    bad = {"type": "player.repeat_set", "event_id": "bad", "occurred_at": 5, "user_id": "u1", "device_id": "d1",
           "repeat": "forever"}
    after, out = player.evolve(state, bad)
    assert dead(out) and "forever" in dead(out)[0]
    assert player.to_view(after) == player.to_view(state)


def test_states_written_before_shuffle_existed_read_as_off() -> None:
    state, _ = fold([play("p", TRACKS)])
    old = {k: v for k, v in state.items() if k not in ("shuffle", "order", "pos", "repeat")}
    view = player.to_view(old)
    assert view["shuffle_state"] is False and view["repeat_state"] == "off"
    after, items = walk_next(old, 2)
    assert items == ["t1", "t2"]
    after, _ = fold([shuffle("s", True)], after)
    assert player.upcoming(after) == [TRACKS[i] for i in reference_order(8, 2, "s")[1:]]


COMMANDS = st.sampled_from(["next", "prev", "shuffle_on", "shuffle_off", "repeat_off", "repeat_track",
                            "repeat_context", "queue", "play"])


def _event(i: int, cmd: str) -> dict:
    eid = f"e{i}"
    return {
        "next": lambda: nxt(eid), "prev": lambda: prev(eid),
        "shuffle_on": lambda: shuffle(eid, True), "shuffle_off": lambda: shuffle(eid, False),
        "repeat_off": lambda: repeat(eid, "off"), "repeat_track": lambda: repeat(eid, "track"),
        "repeat_context": lambda: repeat(eid, "context"),
        "queue": lambda: ev("player.queued", eid, track_id=f"q{i}"),
        "play": lambda: play(eid, TRACKS[: 3 + i % 5], offset=i % 3),
    }[cmd]()


@settings(max_examples=150, deadline=None)
@given(st.lists(COMMANDS, min_size=1, max_size=30))
def test_any_command_sequence_keeps_the_order_a_permutation_and_replays_agree(cmds: list[str]) -> None:
    events = [play("p0", TRACKS)] + [_event(i, c) for i, c in enumerate(cmds, 1)]
    state, _ = fold(events)
    again, _ = fold(events)  # a replay of the same log
    assert player.to_view(again) == player.to_view(state)
    redelivered, out = fold(events, state)  # at-least-once: the same events again change nothing
    assert out == [] and player.to_view(redelivered) == player.to_view(state)
    if state["shuffle"] and state["order"]:
        assert sorted(state["order"]) == list(range(len(state["tracks"])))
        assert state["order"][state["pos"]] == state["index"]
    if not state["from_queue"]:
        assert state["item"] == state["tracks"][state["index"]]
    upcoming_context = [t for t in player.upcoming(state) if not t.startswith("q")]
    assert len(upcoming_context) < len(state["tracks"])  # the current item is not upcoming again
