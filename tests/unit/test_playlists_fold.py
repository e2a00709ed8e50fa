"""Playlists fold: Spotify reorder semantics, add/remove, permissions, snapshot ids, redelivery."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from processors import playlists
from schemas.codec import default_codec

CODEC = default_codec()
OWNER = "owner"


def ev(etype: str, at: int, eid: str, **fields) -> dict:
    event = {"type": etype, "event_id": eid, "occurred_at": at, **fields}
    assert CODEC.from_json(CODEC.to_json(event)) == event
    return event


def created(eid="c0", collaborative=False):
    return ev(
        "playlist.created",
        0,
        eid,
        playlist_id="p1",
        owner_id=OWNER,
        name="Mix",
        collaborative=collaborative,
        public=False,
    )


def added(eid, tracks, position=None, user=OWNER, at=1):
    return ev(
        "playlist.tracks_added", at, eid, playlist_id="p1", user_id=user, track_ids=tracks, position=position
    )


def removed(eid, tracks, user=OWNER):
    return ev("playlist.tracks_removed", 2, eid, playlist_id="p1", user_id=user, track_ids=tracks)


def moved(eid, rs, rl, ib, user=OWNER):
    return ev(
        "playlist.tracks_moved",
        3,
        eid,
        playlist_id="p1",
        user_id=user,
        range_start=rs,
        range_length=rl,
        insert_before=ib,
    )


def fold(events, state=None):
    outputs = []
    for e in events:
        state, out = playlists.evolve(state, e)
        outputs.extend(out)
    return state, outputs


def ids(state):
    return playlists.track_ids(state)


# ------------------------------------------------------------------ Spotify's documented reorder examples


def test_spotify_reorder_examples():
    ten = [str(i) for i in range(10)]
    assert playlists.move_range(ten, 0, 1, 10) == ten[1:] + ["0"]  # first item to the last position
    assert playlists.move_range(ten, 9, 1, 0) == ["9"] + ten[:9]  # last item to the start
    eleven = [str(i) for i in range(11)]
    assert playlists.move_range(eleven, 9, 2, 0) == ["9", "10"] + eleven[:9]  # items 9-10 to the start
    assert playlists.move_range(ten, 2, 3, 3) == ten  # insert_before inside the range: unchanged
    assert playlists.move_range(ten, 2, 2, 7) == ["0", "1", "4", "5", "6", "2", "3", "7", "8", "9"]


def test_move_errors():
    assert playlists.move_error(3, 0, 0, 1) == "range_length must be at least 1"
    assert "beyond" in playlists.move_error(3, 2, 2, 0)
    assert "insert_before 4" in playlists.move_error(3, 0, 1, 4)
    assert playlists.move_error(3, 0, 3, 3) is None


# ------------------------------------------------------------------ edits


def test_add_append_insert_remove_every_occurrence():
    state, out = fold(
        [created(), added("a1", ["x", "y"]), added("a2", ["z"], position=0), added("a3", ["x"], 2)]
    )
    assert ids(state) == ["z", "x", "x", "y"]
    assert state["entries"][0] == {"track_id": "z", "added_by": OWNER, "added_at": 1}
    assert [o["view"]["version"] for o in out] == [1, 2, 3, 4]
    state, _ = playlists.evolve(state, removed("r1", ["x", "absent"]))
    assert ids(state) == ["z", "y"]


def test_add_beyond_length_is_rejected_with_reason():
    state, _ = fold([created(), added("a1", ["x"])])
    after, out = playlists.evolve(state, added("a2", ["y"], position=2))
    assert out[0]["kind"] == "dead_letter" and "position 2" in out[0]["reason"]
    assert ids(after) == ["x"] and after["snapshot_id"] == state["snapshot_id"]
    after, _ = playlists.evolve(after, added("a3", ["y"], position=1))  # == length is an append
    assert ids(after) == ["x", "y"]


def test_permissions_owner_collaborators_others():
    state, _ = fold([created(), added("a1", ["x"])])
    _, out = playlists.evolve(state, added("a2", ["y"], user="bob"))
    assert out[0]["kind"] == "dead_letter" and "bob" in out[0]["reason"]
    _, out = playlists.evolve(
        state,
        ev("playlist.collaborator_added", 5, "k0", playlist_id="p1", user_id="bob", collaborator_id="bob"),
    )
    assert out[0]["kind"] == "dead_letter" and "not the owner" in out[0]["reason"]
    state, _ = playlists.evolve(
        state,
        ev("playlist.collaborator_added", 5, "k1", playlist_id="p1", user_id=OWNER, collaborator_id="bob"),
    )
    # a collaborator of a non-collaborative playlist may not edit yet
    _, out = playlists.evolve(state, added("a3", ["y"], user="bob"))
    assert out[0]["kind"] == "dead_letter"
    state, _ = playlists.evolve(
        state,
        ev(
            "playlist.details_changed",
            6,
            "d1",
            playlist_id="p1",
            user_id=OWNER,
            name=None,
            collaborative=True,
            public=None,
        ),
    )
    assert state["name"] == "Mix" and state["collaborative"] is True
    state, out = playlists.evolve(state, added("a4", ["y"], user="bob"))
    assert out[0]["kind"] == "view" and ids(state) == ["x", "y"]
    _, out = playlists.evolve(
        state,
        ev(
            "playlist.details_changed",
            7,
            "d2",
            playlist_id="p1",
            user_id="bob",
            name="Bob's",
            collaborative=None,
            public=None,
        ),
    )
    assert out[0]["kind"] == "dead_letter"  # details stay the owner's


def test_events_before_creation_and_second_creation_are_dead_lettered():
    state, out = playlists.evolve(None, added("a1", ["x"]))
    assert state is None and out[0]["reason"] == "playlist 'p1' does not exist"
    state, _ = playlists.evolve(None, created())
    same, out = playlists.evolve(state, created("c1"))
    assert out[0]["reason"] == "playlist 'p1' already exists" and same["version"] == 1


def test_snapshot_ids_follow_the_edit_sequence():
    a, _ = fold([created(), added("a1", ["x"]), added("a2", ["y"])])
    b, _ = fold([created(), added("a1", ["x"]), added("a2", ["y"])])
    c, _ = fold([created(), added("a2", ["y"]), added("a1", ["x"])])
    assert a["snapshot_id"] == b["snapshot_id"]
    assert a["snapshot_id"] != c["snapshot_id"]
    assert a["version"] == 3


def test_redelivery_does_not_bump_the_snapshot_and_input_not_mutated():
    events = [created(), added("a1", ["x", "y"]), moved("m1", 0, 1, 2), removed("r1", ["y"])]
    once, _ = fold(events)
    twice, out = fold([*events, *events])
    assert twice == once
    assert [o for o in out if o["kind"] == "view"] == [o for o in fold(events)[1] if o["kind"] == "view"]
    frozen = repr(once)
    playlists.evolve(once, added("a9", ["z"], position=0))
    playlists.evolve(once, moved("m9", 0, 1, 1))
    assert repr(once) == frozen


# ------------------------------------------------------------------ properties against a list model


def _model_move(items, rs, rl, ib):
    """An independent model of Spotify's reorder: give each item a sort key; the moved block's keys sit
    just below insert_before's original index."""
    keyed = []
    for i, item in enumerate(items):
        if rs <= i < rs + rl:
            keyed.append((ib - 1 + (i - rs + 1) / (rl + 1), item))
        else:
            keyed.append((i, item))
    return [item for _, item in sorted(keyed, key=lambda kv: kv[0])]


_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("add"),
            st.lists(st.sampled_from("abcde"), min_size=1, max_size=3),
            st.none() | st.integers(0, 8),
        ),
        st.tuples(st.just("remove"), st.lists(st.sampled_from("abcde"), min_size=1, max_size=2)),
        st.tuples(st.just("move"), st.integers(0, 8), st.integers(0, 4), st.integers(0, 9)),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(ops=_ops, data=st.data())
def test_playlist_matches_list_model_never_loses_or_invents(ops, data):
    state, _ = playlists.evolve(None, created())
    model: list[str] = []
    added_count: Counter[str] = Counter()
    events = [created()]
    for n, op in enumerate(ops):
        eid = f"x{n}"
        before = Counter(ids(state))
        if op[0] == "add":
            _, tracks, pos = op
            event = added(eid, tracks, pos)
            valid = pos is None or pos <= len(model)
            if valid:
                p = len(model) if pos is None else pos
                model[p:p] = tracks
                added_count.update(tracks)
        elif op[0] == "remove":
            event = removed(eid, op[1])
            valid = True
            model = [t for t in model if t not in op[1]]
            for t in op[1]:
                added_count.pop(t, None)
        else:
            _, rs, rl, ib = op
            event = moved(eid, rs, rl, ib)
            valid = rl >= 1 and rs + rl <= len(model) and ib <= len(model)
            if valid:
                model = _model_move(model, rs, rl, ib)
        state, out = playlists.evolve(state, event)
        events.append(event)
        assert (out[0]["kind"] == "view") == valid, (op, out)
        assert ids(state) == model
        if op[0] == "move":
            assert Counter(ids(state)) == before  # a move is a permutation
        assert Counter(ids(state)) == added_count  # adds minus removes, nothing lost or invented
    # redelivering any events again (at-least-once) changes nothing, snapshot included
    dupes = data.draw(st.lists(st.sampled_from(events), max_size=6))
    again, out = fold(dupes, state)
    assert again["entries"] == state["entries"] and again["snapshot_id"] == state["snapshot_id"] and out == []
