"""The folds behind the Subsonic API: library (stars), credentials (app passwords), playlist deletion.

The library and credentials folds are order-free and idempotent: any order and any redelivery of the
same events give the same document (hypothesis), and the document says what the latest event per item
(by occurred_at, event_id) says, computed here directly from the events.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from processors import credentials, library, playlists
from processors.views import VIEWS, apply_batch


def fold(evolve, events: list[dict]) -> dict | None:  # noqa: ANN001 - a fold
    state = None
    for e in events:
        state, _ = evolve(state, e)
    return state


star_events = st.lists(st.builds(
    lambda i, kind, item, starred, at: {"type": "library.starred" if starred else "library.unstarred",
                                        "event_id": f"e{i}", "occurred_at": at, "user_id": "u1",
                                        "item_type": kind, "item_id": item},
    st.integers(0, 50), st.sampled_from(["track", "album", "artist"]), st.sampled_from(["a", "b"]), st.booleans(),
    st.integers(0, 5)), min_size=1, max_size=12, unique_by=lambda e: e["event_id"])


@settings(max_examples=200)
@given(star_events, st.randoms(use_true_random=False))
def test_library_is_the_latest_event_per_item_in_any_order(events: list[dict], rng) -> None:  # noqa: ANN001
    shuffled = list(events) + rng.sample(events, k=len(events) // 2)  # reordered, some delivered twice
    rng.shuffle(shuffled)
    state = fold(library.evolve, shuffled)
    assert state == fold(library.evolve, events)
    latest: dict[tuple[str, str], dict] = {}
    for e in events:
        key = (e["item_type"], e["item_id"])
        if key not in latest or (e["occurred_at"], e["event_id"]) > (latest[key]["occurred_at"], latest[key]["event_id"]):
            latest[key] = e
    expected = sorted((e["occurred_at"], e["event_id"], k[0], k[1]) for k, e in latest.items()
                      if e["type"] == "library.starred")
    assert list(library.starred(state)) == [(kind, item, at) for at, _, kind, item in expected]
    assert library.to_view(state) == state  # the document is the whole state (read-your-writes needs it)


def test_library_refuses_other_types_and_users() -> None:
    state, out = library.evolve(None, {"type": "player.paused", "event_id": "x", "occurred_at": 0, "user_id": "u1"})
    assert out[0]["kind"] == "dead_letter"
    state, _ = library.evolve(None, {"type": "library.starred", "event_id": "a", "occurred_at": 0, "user_id": "u1",
                                     "item_type": "track", "item_id": "t"})
    _, out = library.evolve(state, {"type": "library.starred", "event_id": "b", "occurred_at": 0, "user_id": "u2",
                                    "item_type": "track", "item_id": "t"})
    assert out[0]["kind"] == "dead_letter" and library.starred_at(state, "track", "t") == 0


def _cred(i: int, at: int, etype: str, pid: str | None, user: str = "u1") -> dict:
    e = {"type": etype, "event_id": f"c{i}", "occurred_at": at, "user_id": user}
    if etype == "app_password.issued":
        e.update(password_id=pid, ciphertext=f"v1.{pid}")
    elif etype == "app_password.revoked":
        e["password_id"] = pid
    return e


cred_events = st.lists(st.builds(
    lambda i, at, etype, pid: _cred(i, at, etype, pid),
    st.integers(0, 60), st.integers(0, 6),
    st.sampled_from(["app_password.issued", "app_password.issued", "app_password.revoked", "user.erasure_requested"]),
    st.sampled_from(["p1", "p2", "p3", None])), max_size=10, unique_by=lambda e: e["event_id"]).map(
    lambda es: [e for e in es if not (e["type"] == "app_password.issued" and e["password_id"] is None)])


def expected_active(events: list[dict]) -> list[str]:
    """The password ids that must be active, straight from the module doc's rule."""
    if any(e["type"] == "user.erasure_requested" for e in events):
        return []
    issued: dict[str, tuple[int, str]] = {}
    for e in events:
        if e["type"] == "app_password.issued":
            mark = (e["occurred_at"], e["event_id"])
            issued[e["password_id"]] = min(issued.get(e["password_id"], mark), mark)
    revoked = {e["password_id"] for e in events if e["type"] == "app_password.revoked" and e["password_id"]}
    floors = [(e["occurred_at"], e["event_id"]) for e in events
              if e["type"] == "app_password.revoked" and e["password_id"] is None]
    floor = max(floors) if floors else None
    alive = [(mark, pid) for pid, mark in issued.items() if pid not in revoked and (floor is None or mark > floor)]
    return [pid for _, pid in sorted(alive)]


@settings(max_examples=300)
@given(cred_events, st.randoms(use_true_random=False))
def test_credentials_follow_the_rule_in_any_order(events: list[dict], rng) -> None:  # noqa: ANN001
    if not events:
        return
    shuffled = list(events) + rng.sample(events, k=len(events) // 2)
    rng.shuffle(shuffled)
    doc = credentials.to_view(fold(credentials.evolve, shuffled))
    assert doc == credentials.to_view(fold(credentials.evolve, events))
    assert [r["password_id"] for r in doc["passwords"]] == expected_active(events)
    for row in doc["passwords"]:
        assert row["ciphertext"] == f"v1.{row['password_id']}"


def test_erasure_drops_the_ciphertexts_for_good() -> None:
    state = fold(credentials.evolve, [_cred(1, 1, "app_password.issued", "p1"), _cred(2, 2, "user.erasure_requested", None),
                                      _cred(3, 3, "app_password.issued", "p2")])
    assert state["issued"] == {} and credentials.to_view(state)["passwords"] == []


def test_the_credentials_view_takes_erasure_from_the_users_topic() -> None:
    spec = next(s for s in VIEWS if s.name == "credentials")
    assert spec.source_topics == ("credentials", "users")
    published, dead = apply_batch(spec, {}, [(None, _cred(1, 1, "app_password.issued", "p1")),
                                             (None, {"type": "user.registered", "event_id": "r", "occurred_at": 0,
                                                     "user_id": "u1", "country": "DE", "product": "free",
                                                     "display_name": "x"})])
    assert not dead and [r["password_id"] for r in published["u1"][1]["passwords"]] == ["p1"]


def test_a_deleted_playlist_takes_no_more_edits_and_only_its_owner_deletes_it() -> None:
    created = {"type": "playlist.created", "event_id": "p0", "occurred_at": 0, "playlist_id": "pl", "owner_id": "o",
               "name": "n", "collaborative": False, "public": False}
    state, _ = playlists.evolve(None, created)
    delete = {"type": "playlist.deleted", "event_id": "p1", "occurred_at": 1, "playlist_id": "pl", "user_id": "x"}
    same, out = playlists.evolve(state, delete)
    assert out[0]["kind"] == "dead_letter" and "not the owner" in out[0]["reason"] and not same.get("deleted")
    gone, out = playlists.evolve(state, {**delete, "event_id": "p2", "user_id": "o"})
    assert gone["deleted"] is True and out[0]["view"]["deleted"] is True and gone["version"] == 2
    add = {"type": "playlist.tracks_added", "event_id": "p3", "occurred_at": 2, "playlist_id": "pl", "user_id": "o",
           "track_ids": ["t"], "position": None}
    after, out = playlists.evolve(gone, add)
    assert out[0]["kind"] == "dead_letter" and "deleted" in out[0]["reason"] and after["entries"] == []
    assert "deleted" not in playlists.to_view(state)  # documents of live playlists are unchanged
