"""The royalty computation in parts (processors/royalty_parts.py) gives the statement of the
literal oracle of spec/royalties.md, whatever the partition counts, the interleaving of the
partitions and the redelivery of what they already processed.

The event sets are the adversarial ones of tests/unit/test_royalties_props.py: a tiny id universe
where play_ids are shared by two users (the join must decide the play's user across partitions),
plays straddle day and month boundaries, the loop cap and impossible listening are hit, and
catalog, rights and pools arrive in any order."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from processors import batches, plays, royalties
from processors.batches import RoyaltyView
from processors.royalty_parts import (
    Decided,
    PlayJoin,
    UserShard,
    decided_record,
    event_record,
    join_records,
    part_of,
    shard_records,
    statement_of,
    tally_from_json,
    tally_to_json,
)
from processors.rules import PLAY_TYPES, ROYALTY_SOURCE_TYPES
from tests.unit.test_royalties_props import SETTINGS, event_sets, oracle, periods_of


def run_parts(events: list[dict], listening_parts: int, play_parts: int, user_parts: int, rng: random.Random
              ) -> tuple[list[RoyaltyView], list[RoyaltyView], list[tuple[str, str, str]]]:
    """Drive the three stages as the live pipeline would, on their records (packed facts), with
    random batches, interleavings and rewinds; returns the joins' and the shards' views and what
    the joins dead-lettered."""
    # the plays stage: listening events keyed by user, joined per batch into summaries, packed per
    # play partition into royalty.inputs records
    listening: list[list[dict]] = [[] for _ in range(listening_parts)]
    for e in events:
        if e["type"] in PLAY_TYPES:
            listening[part_of(e["user_id"], listening_parts)].append(e)
    join_q: list[list[bytes]] = [[] for _ in range(play_parts)]
    for evs in listening:
        i = 0
        while i < len(evs):
            n = rng.randint(1, 6)
            by_part: dict[int, list[tuple[str, bytes]]] = {}
            for s in plays.summaries_of(evs[i : i + n]):
                by_part.setdefault(part_of(s.play_id, play_parts), []).append(batches.fact_of_summary(s))
            for p, facts in by_part.items():
                join_q[p] += batches.pack_facts(facts, per_record=3)
            i += n
    # catalog, rights, takedowns, pools: broadcast to every shard, at random points of its queue
    others = [e for e in events if e["type"] in ROYALTY_SOURCE_TYPES]
    joins = [RoyaltyView() for _ in range(play_parts)]
    shards = [RoyaltyView() for _ in range(user_parts)]
    shard_q: list[list[bytes]] = [[] for _ in range(user_parts)]
    dead: list[tuple[str, str, str]] = []
    cursors_j = [0] * play_parts
    cursors_s = [0] * user_parts
    broadcast = 0
    while True:
        ready_j = [p for p in range(play_parts) if cursors_j[p] < len(join_q[p])]
        ready_s = [u for u in range(user_parts) if cursors_s[u] < len(shard_q[u])]
        if not ready_j and not ready_s and broadcast == len(others):
            break
        roll = rng.random()
        if broadcast < len(others) and (roll < 0.2 or not (ready_j or ready_s)):
            for q in shard_q:
                q += batches.pack_facts([event_record(others[broadcast])])
            broadcast += 1
        elif ready_j and (roll < 0.6 or not ready_s):
            p = rng.choice(ready_j)
            k = rng.randint(1, 3)
            out, foreign, bad = join_records(joins[p], user_parts, join_q[p][cursors_j[p] : cursors_j[p] + k])
            assert bad == []
            by_user: dict[int, list[tuple[str, bytes]]] = {}
            for u, d in out:
                by_user.setdefault(u, []).append(decided_record(d))
            for u, items in by_user.items():
                shard_q[u] += batches.pack_facts(items, per_record=2)
            dead += [f for _, f in foreign]
            cursors_j[p] = min(cursors_j[p] + k, len(join_q[p]))
            if rng.random() < 0.1:  # a rewind: the join sees records again (its state kept)
                cursors_j[p] = rng.randint(0, cursors_j[p])
        else:
            u = rng.choice(ready_s)
            k = rng.randint(1, 3)
            assert shard_records(shards[u], shard_q[u][cursors_s[u] : cursors_s[u] + k]) == []
            cursors_s[u] = min(cursors_s[u] + k, len(shard_q[u]))
            if rng.random() < 0.05:  # a rewind of the shard's input
                cursors_s[u] = rng.randint(0, cursors_s[u])
    return joins, shards, dead


@SETTINGS
@given(events=event_sets(), seed=st.integers(0, 2**32 - 1), listening_parts=st.integers(1, 3),
       play_parts=st.integers(1, 4), user_parts=st.integers(1, 4))
def test_the_statement_in_parts_equals_the_oracle(events: list[dict], seed: int, listening_parts: int,
                                                  play_parts: int, user_parts: int) -> None:
    rng = random.Random(seed)
    _, shards, dead = run_parts(events, listening_parts, play_parts, user_parts, rng)
    whole = royalties.fold(events)
    for period in periods_of(events):
        tallies = [tally_from_json(tally_to_json(UserShard(s).tally(period))) for s in shards]
        pools = royalties.pools_for(shards[0].state, period)
        assert statement_of(tallies, pools, period) == oracle(events, period), period
        # the shards' streams, together, are the global fold's
        got = sorted(x for s in shards for x in UserShard(s).streams(period))
        assert got == sorted(royalties.streams_of(whole, period)), period
    # each shard holds only its users' plays, each play exactly once
    held = [(pid, acc[0][3]) for s in shards for pid, acc in s.state.plays.items()]
    assert len({pid for pid, _ in held}) == len(held) == len(whole.plays)
    assert all(acc[2] is None for s in shards for acc in s.state.plays.values())  # decided: one user
    assert all(part_of(user, len(shards)) == u for u, s in enumerate(shards) for _, (_, user) in
               ((0, (pid, acc[0][3])) for pid, acc in s.state.plays.items()))
    # other users' events on a play are dead-lettered once per (play, other user, play's user), as
    # the global view does: for the play's final user, and for a user who decided it for a while
    final = {(pid, other, acc[0][3]) for pid, acc in whole.plays.items() for other in (acc[2] or ())}
    users_of: dict[str, set[str]] = {}
    for e in events:
        if e["type"] in PLAY_TYPES:
            users_of.setdefault(e["play_id"], set()).add(e["user_id"])
    assert len(dead) == len(set(dead)) and final <= set(dead)
    assert all(a != b and {a, b} <= users_of[pid] for pid, a, b in dead)


def test_a_play_whose_user_changes_moves_to_the_new_users_partition() -> None:
    """u-late's event on the play is earlier than u-first's: the play is u-late's, and the shard of
    u-first is told to drop it."""
    users = ["u-first", "u-late"]
    parts = 8
    while part_of(users[0], parts) == part_of(users[1], parts):
        users[1] += "x"
    first = plays.PlaySummary(play_id="p1", user_id=users[0], track_id="t", country="SE", product="premium",
                              play_time=2_000, ms=40_000, from_start=True, source_event_id="e2", ended=True)
    late = plays.PlaySummary(play_id="p1", user_id=users[1], track_id="t", country="SE", product="premium",
                             play_time=1_000, ms=50_000, from_start=True, source_event_id="e1", ended=True)
    join = PlayJoin(RoyaltyView(), parts)
    out1, dead1 = join.apply([first])
    assert [(u, d.key[3] if d.key else None) for u, d in out1] == [(part_of(users[0], parts), users[0])]
    out2, dead2 = join.apply([late])
    assert [(u, d.key is None) for u, d in out2] == [(part_of(users[0], parts), True),
                                                     (part_of(users[1], parts), False)]
    assert dead1 == [] and dead2 == [("p1", users[0], users[1])]
    assert join.apply([first, late]) == ([], [])  # redelivered: nothing new to send or report
    a, b = UserShard(RoyaltyView()), UserShard(RoyaltyView())
    for u, d in out1 + out2:
        (a if u == part_of(users[0], parts) else b).apply_decided(d)
    assert a.view.state.plays == {} and a.view.state.by_period == {}
    assert b.view.state.plays["p1"][0][3] == users[1] and b.view.state.plays["p1"][1] == 50_000


def test_shard_views_survive_a_checkpoint_and_refuse_records_that_are_not_theirs() -> None:
    """A shard's view restored from its snapshot (processors/snapshot.py) equals the view, and a
    shard refuses a play fact (those go to the join) and garbage, with a reason."""
    view = RoyaltyView()
    shard_records(view, batches.pack_facts([decided_record(Decided("p1", (0, 5, "e", "u", "t", "SE", "free"), 40_000))]))
    again = RoyaltyView.from_snapshot(view.to_snapshot())
    assert again.state.plays == view.state.plays and again.state.by_period == view.state.by_period
    play = batches.fact_of_summary(plays.PlaySummary(play_id="p2", user_id="u", track_id="t", country="SE",
                                                     product="free", play_time=5, ms=1, from_start=True,
                                                     source_event_id="e", ended=True))
    bad = shard_records(view, [b"not json", *batches.pack_facts([play])])
    assert [i for i, _ in bad] == [0, 1] and "decided plays only" in bad[1][1]
    _, _, bad = join_records(RoyaltyView(), 2, [b"[1]", *batches.pack_facts([decided_record(Decided("p", None))])])
    assert [i for i, _ in bad] == [0, 1]


def test_a_decided_play_that_is_not_one_is_refused() -> None:
    import pytest

    for raw in (["p", [1, 2], 3], [1, None, 0], ["p", None, "x"]):
        with pytest.raises(ValueError):
            Decided.from_json(raw)
