"""Users fold (plan, devices, erasure) and player fold (queue, transport, progress)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from processors import player, users
from schemas.codec import default_codec

CODEC = default_codec()


def ev(etype: str, at: int, eid: str, **fields) -> dict:
    event = {"type": etype, "event_id": eid, "occurred_at": at, **fields}
    assert CODEC.from_json(CODEC.to_json(event)) == event
    return event


def fold(fn, events, state=None):
    outputs = []
    for e in events:
        state, out = fn(state, e)
        outputs.extend(out)
    return state, outputs


# ------------------------------------------------------------------ users


def registered(at, eid, country="DE", product="free", name="Ann"):
    return ev("user.registered", at, eid, user_id="u1", country=country, product=product, display_name=name)


def sub(at, eid, product, country="DE"):
    return ev("subscription.changed", at, eid, user_id="u1", product=product, country=country)


def device(at, eid, device_id="d1", name="Ann's phone", device_type="phone"):
    return ev(
        "device.registered", at, eid, user_id="u1", device_id=device_id, device_type=device_type, name=name
    )


def erase(at, eid):
    return ev("user.erasure_requested", at, eid, user_id="u1")


def test_plan_follows_latest_event_by_event_time():
    state, out = fold(
        users.evolve, [registered(100, "e1"), sub(300, "e3", "premium", "FR"), sub(200, "e2", "free")]
    )
    view = users.to_view(state)
    assert (view["country"], view["product"]) == ("FR", "premium")
    assert view["display_name"] == "Ann" and view["registered"] is True
    assert len(out) == 2  # the stale subscription change produced no view update


def test_devices_latest_per_device_sorted():
    state, _ = fold(
        users.evolve,
        [
            device(10, "e1", "d2", "Car", "car"),
            device(5, "e0", "d1"),
            device(20, "e2", "d1", "Kitchen", "speaker"),
        ],
    )
    assert users.to_view(state)["devices"] == [
        {"device_id": "d1", "device_type": "speaker", "name": "Kitchen"},
        {"device_id": "d2", "device_type": "car", "name": "Car"},
    ]


def test_erasure_removes_personal_data_even_from_late_events():
    state, out = fold(users.evolve, [registered(100, "e1"), device(110, "e2"), erase(500, "e3")])
    view = users.to_view(state)
    assert view["erased"] is True and view["display_name"] is None
    assert view["devices"] == [{"device_id": "d1", "device_type": "phone", "name": None}]
    assert view["country"] == "DE"  # not personal data; royalties need it
    # a late/replayed registration or device event must not bring the name back
    state, _ = fold(
        users.evolve,
        [registered(600, "e4", name="Ann again"), device(700, "e5", "d3", "Ann's tv", "tv")],
        state,
    )
    assert "Ann" not in repr(state)
    assert users.to_view(state)["devices"][1] == {"device_id": "d3", "device_type": "tv", "name": None}


_user_events = st.lists(
    st.one_of(
        st.builds(
            lambda at, n, c, p: registered(at, f"e{n:02d}", c, p, f"name{n}"),
            st.integers(0, 30),
            st.integers(0, 99),
            st.sampled_from(["DE", "FR"]),
            st.sampled_from(["free", "premium"]),
        ),
        st.builds(
            lambda at, n, p: sub(at, f"e{n:02d}", p),
            st.integers(0, 30),
            st.integers(0, 99),
            st.sampled_from(["free", "premium"]),
        ),
        st.builds(
            lambda at, n, d: device(at, f"e{n:02d}", d, f"dev{n}"),
            st.integers(0, 30),
            st.integers(0, 99),
            st.sampled_from(["d1", "d2"]),
        ),
        st.builds(lambda at, n: erase(at, f"e{n:02d}"), st.integers(0, 30), st.integers(0, 99)),
    ),
    max_size=10,
    unique_by=lambda e: e["event_id"],
)


@settings(max_examples=150, deadline=None)
@given(events=_user_events, data=st.data())
def test_users_fold_order_and_duplicate_independent(events, data):
    order = data.draw(st.permutations(events))
    dupes = data.draw(st.lists(st.sampled_from(events), max_size=4)) if events else []
    a, _ = fold(users.evolve, events)
    b, _ = fold(users.evolve, [*order, *dupes])
    assert a == b
    if any(e["type"] == "user.erasure_requested" for e in events):
        view = users.to_view(b)
        assert view["display_name"] is None and all(d["name"] is None for d in view["devices"])
        assert "name" not in repr(b).replace("'name': None", "").replace("'display_name'", "")


# ------------------------------------------------------------------ player


def play(at, eid, tracks, offset=0, position=0, device_id="d1", context="spotify:playlist:p1"):
    return ev(
        "player.play_requested",
        at,
        eid,
        user_id="u1",
        device_id=device_id,
        track_ids=tracks,
        context_uri=context,
        offset=offset,
        position_ms=position,
    )


def skip(at, eid, direction):
    return ev("player.skipped_to", at, eid, user_id="u1", device_id="d1", direction=direction)


def queue(at, eid, track_id):
    return ev("player.queued", at, eid, user_id="u1", track_id=track_id)


def test_play_request_sets_item_context_and_progress():
    state, out = player.evolve(None, play(1_000, "e1", ["a", "b", "c"], offset=1, position=5_000))
    view = player.to_view(state)
    assert (view["device_id"], view["item"], view["is_playing"], view["queue_position"]) == (
        "d1",
        "b",
        True,
        1,
    )
    assert view["queue"] == ["c"]
    assert out[0]["kind"] == "view"
    assert player.progress_ms(state, 4_000) == 8_000
    assert player.progress_ms(view, 4_000) == 8_000  # works on the view document too
    assert player.progress_ms(state, 400_000, duration_ms=180_000) == 180_000
    assert player.progress_ms(state, 500) == 5_000  # an earlier clock never rewinds


def test_pause_resume_seek_progress():
    events = [
        play(1_000, "e1", ["a"]),
        ev("player.paused", 11_000, "e2", user_id="u1", device_id="d1", position_ms=10_000),
    ]
    state, _ = fold(player.evolve, events)
    assert player.progress_ms(state, 99_000) == 10_000 and state["playing"] is False
    state, _ = player.evolve(state, ev("player.resumed", 20_000, "e3", user_id="u1", device_id="d1"))
    assert player.progress_ms(state, 25_000) == 15_000
    state, _ = player.evolve(
        state, ev("player.seeked", 30_000, "e4", user_id="u1", device_id="d1", position_ms=60_000)
    )
    assert player.progress_ms(state, 31_000) == 61_000


def test_queue_next_previous_semantics():
    state, _ = fold(
        player.evolve, [play(0, "e1", ["a", "b", "c"]), queue(1, "e2", "q1"), queue(2, "e3", "q2")]
    )
    assert player.upcoming(state) == ["q1", "q2", "b", "c"]
    state, _ = player.evolve(state, skip(3, "e4", "next"))
    assert state["item"] == "q1"
    state, _ = player.evolve(state, skip(4, "e5", "previous"))
    assert state["item"] == "a"  # back to the context item the queue interrupted
    state, _ = fold(player.evolve, [skip(5, "e6", "next"), skip(7, "e8", "next")], state)
    assert state["item"] == "b" and state["queue"] == []  # q2 first, then the context goes on
    state, _ = player.evolve(state, skip(8, "e9", "next"))
    assert state["item"] == "c" and player.progress_ms(state, 8) == 0
    state, out = player.evolve(state, skip(9, "e10", "next"))
    assert out[0]["kind"] == "dead_letter" and state["item"] == "c"
    state, _ = fold(
        player.evolve,
        [skip(10, "e11", "previous"), skip(11, "e12", "previous"), skip(12, "e13", "previous")],
        state,
    )
    assert state["item"] == "a"  # previous at the first item restarts it


def test_transfer_volume_and_play_flag():
    state, _ = fold(
        player.evolve,
        [
            play(0, "e1", ["a"]),
            ev("player.paused", 1_000, "e2", user_id="u1", device_id="d1", position_ms=1_000),
            ev("player.transferred", 2_000, "e3", user_id="u1", device_id="d2", play=False),
        ],
    )
    assert state["active_device"] == "d2" and state["playing"] is False  # play=false keeps the state
    state, _ = player.evolve(
        state, ev("player.transferred", 3_000, "e4", user_id="u1", device_id="d3", play=True)
    )
    assert state["active_device"] == "d3" and state["playing"] is True
    assert player.progress_ms(state, 4_000) == 2_000
    state, _ = player.evolve(
        state, ev("player.volume_set", 5_000, "e5", user_id="u1", device_id="d3", volume_percent=40)
    )
    assert player.to_view(state)["volumes"] == {"d3": 40}


def test_invalid_commands_dead_letter_and_keep_state():
    state, out = player.evolve(
        None, ev("player.paused", 0, "e1", user_id="u1", device_id="d1", position_ms=0)
    )
    assert out[0]["kind"] == "dead_letter" and state["item"] is None
    state, out = player.evolve(state, play(1, "e2", ["a"], offset=1))
    assert out[0]["kind"] == "dead_letter" and "offset" in out[0]["reason"]
    _, out = player.evolve(state, ev("player.transferred", 2, "e3", user_id="u1", device_id="d9", play=True))
    assert out[0]["kind"] == "dead_letter"


def test_player_redelivery_is_a_no_op():
    events = [
        play(0, "e1", ["a", "b", "c"]),
        queue(1, "e2", "q"),
        skip(2, "e3", "next"),
        skip(3, "e4", "next"),
    ]
    once, _ = fold(player.evolve, events)
    # at-least-once: everything after the "last commit" (e2) is delivered again
    twice, out = fold(player.evolve, [*events, *events[1:]])
    assert twice == once
    assert once["item"] == "b"
    frozen = repr(once)
    player.evolve(once, skip(5, "e5", "previous"))
    assert repr(once) == frozen  # the input state is not mutated
