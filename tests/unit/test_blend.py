"""processors/recs/blend.py: a Blend from two taste profiles, the catalog and a rights check."""

from __future__ import annotations

from processors import taste
from processors.home import DictCatalog
from processors.recs import blend as blend_fold

T = 1_779_930_000_000  # 2026-05-28T01:00:00Z
DAY = blend_fold.utc_day(T)


def profile(user: str, plays: dict[str, int]) -> dict:
    """A taste profile from ``count`` streams of a track by each artist (at T minus a day)."""
    state = None
    for artist, count in sorted(plays.items()):
        for i in range(count):
            state, _ = taste.evolve(state, {
                "event_id": f"{user}-{artist}-{i}", "user_id": user, "track_id": f"{artist}-x",
                "artist_ids": [artist], "genres": [], "kind": "stream", "at": T - 86_400_000, "country": "DE"})
    return state


def catalog(tracks_per_artist: dict[str, int]) -> DictCatalog:
    docs = [{"track_id": f"{a}-{i}", "artist_ids": [a], "genres": []}
            for a, n in tracks_per_artist.items() for i in range(n)]
    return DictCatalog.from_documents(docs)


CAT = catalog({"shared": 4, "a1": 3, "a2": 3, "b1": 3, "b2": 3})
ALICE = profile("alice", {"shared": 5, "a1": 4, "a2": 3})
BOB = profile("bob", {"shared": 5, "b1": 4, "b2": 3})


def artist(track: str) -> str:
    return track.rsplit("-", 1)[0]


def everything(_track: str) -> bool:
    return True


def test_shared_artists_first_then_both_users_alternate_at_most_two_per_artist() -> None:
    entries = blend_fold.blend("alice", ALICE, "bob", BOB, CAT, everything, DAY)
    tracks = [e["track_id"] for e in entries]
    assert [artist(t) for t in tracks[:2]] == ["shared", "shared"]
    assert entries[0]["user_ids"] == ["alice", "bob"] and entries[1]["user_ids"] == ["alice", "bob"]
    rest = entries[2:]
    owners = [e["user_ids"] for e in rest]
    assert len(rest) == 8  # 4 own artists x 2 tracks
    assert all(owners[i] != owners[i + 1] for i in range(len(owners) - 1))  # strictly alternating
    by_user = {u: {artist(e["track_id"]) for e in rest if e["user_ids"] == [u]} for u in ("alice", "bob")}
    assert by_user == {"alice": {"a1", "a2"}, "bob": {"b1", "b2"}}  # both tastes represented, each their own
    counts: dict[str, int] = {}
    for t in tracks:
        counts[artist(t)] = counts.get(artist(t), 0) + 1
    assert max(counts.values()) == 2 and len(set(tracks)) == len(tracks)
    # the stronger artist of each user comes before the weaker one in their own turn
    alice_order = [artist(e["track_id"]) for e in rest if e["user_ids"] == ["alice"]]
    assert alice_order == ["a1", "a1", "a2", "a2"]


def test_only_tracks_playable_in_the_callers_country() -> None:
    blocked = {"shared-0", "shared-1", "a1-0"}
    entries = blend_fold.blend("alice", ALICE, "bob", BOB, CAT, lambda t: t not in blocked, DAY)
    tracks = {e["track_id"] for e in entries}
    assert not tracks & blocked
    assert {"shared-2", "shared-3"} <= tracks  # the shared artist still gives two (the playable ones)


def test_deterministic_within_a_day_and_different_on_other_days() -> None:
    same_day = T + 3_600_000 * 22  # 23:00 the same UTC day
    assert blend_fold.utc_day(same_day) == DAY
    first = blend_fold.blend("alice", ALICE, "bob", BOB, CAT, everything, DAY)
    assert blend_fold.blend("alice", ALICE, "bob", BOB, CAT, everything, blend_fold.utc_day(same_day)) == first
    # every artist has 3-4 equally popular tracks: which two is a tie the day breaks
    days = [blend_fold.utc_day(T + d * 86_400_000) for d in range(1, 8)]
    outcomes = {tuple(e["track_id"] for e in blend_fold.blend("alice", ALICE, "bob", BOB, CAT, everything, d))
                for d in days}
    assert len(outcomes) > 1


def test_popularity_decides_before_the_day() -> None:
    popularity = {"a1-2": 10, "a1-1": 5}
    days = [blend_fold.utc_day(T + d * 86_400_000) for d in range(5)]
    for d in days:
        entries = blend_fold.blend("alice", ALICE, "bob", BOB, CAT, everything, d, popularity=popularity)
        assert [e["track_id"] for e in entries if artist(e["track_id"]) == "a1"] == ["a1-2", "a1-1"]


def test_a_user_without_a_profile_leaves_the_other_users_taste() -> None:
    entries = blend_fold.blend("alice", ALICE, "bob", None, CAT, everything, DAY)
    assert {artist(e["track_id"]) for e in entries} == {"shared", "a1", "a2"}
    assert all(e["user_ids"] == ["alice"] for e in entries)
    assert blend_fold.blend("alice", None, "bob", None, CAT, everything, DAY) == []


def test_size_bounds_the_blend() -> None:
    assert len(blend_fold.blend("alice", ALICE, "bob", BOB, CAT, everything, DAY, size=3)) == 3
