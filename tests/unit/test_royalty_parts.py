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

from processors import plays, royalties
from processors.royalty_parts import (
    Decided,
    PlayJoin,
    UserShard,
    part_of,
    statement_of,
    tally_from_json,
    tally_to_json,
)
from processors.rules import PLAY_TYPES, ROYALTY_SOURCE_TYPES
from tests.unit.test_royalties_props import SETTINGS, event_sets, oracle, periods_of


def run_parts(events: list[dict], listening_parts: int, play_parts: int, user_parts: int, rng: random.Random
              ) -> tuple[list[PlayJoin], list[UserShard], list[tuple[str, str, str]]]:
    """Drive the three stages as the live pipeline would, with random batches, interleavings and
    rewinds; returns the joins, the shards and what the joins dead-lettered."""
    # the plays stage: listening events keyed by user, joined per batch into summaries
    listening: list[list[dict]] = [[] for _ in range(listening_parts)]
    shard_q: list[list[tuple[str, object]]] = [[] for _ in range(user_parts)]
    for e in events:
        if e["type"] in PLAY_TYPES:
            listening[part_of(e["user_id"], listening_parts)].append(e)
    join_q: list[list[list[plays.PlaySummary]]] = [[] for _ in range(play_parts)]
    for evs in listening:
        i = 0
        while i < len(evs):
            n = rng.randint(1, 6)
            by_part: dict[int, list[plays.PlaySummary]] = {}
            for s in plays.summaries_of(evs[i : i + n]):
                by_part.setdefault(part_of(s.play_id, play_parts), []).append(s)
            for p, ss in by_part.items():
                join_q[p].append(ss)
            i += n
    # catalog, rights, takedowns, pools: broadcast to every shard, at random points of its queue
    others = [e for e in events if e["type"] in ROYALTY_SOURCE_TYPES]
    joins = [PlayJoin(user_parts) for _ in range(play_parts)]
    shards = [UserShard() for _ in range(user_parts)]
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
                q.append(("event", others[broadcast]))
            broadcast += 1
        elif ready_j and (roll < 0.6 or not ready_s):
            p = rng.choice(ready_j)
            out, foreign = joins[p].apply(join_q[p][cursors_j[p]])
            for u, d in out:
                shard_q[u].append(("decided", d))
            dead += foreign
            cursors_j[p] += 1
            if rng.random() < 0.1:  # a rewind: the join sees batches again (its state kept)
                cursors_j[p] = rng.randint(0, cursors_j[p])
        else:
            u = rng.choice(ready_s)
            kind, item = shard_q[u][cursors_s[u]]
            if kind == "event":
                shards[u].apply_event(item)  # type: ignore[arg-type]
            else:
                shards[u].apply_decided(Decided.from_json(Decided.to_json(item)))  # type: ignore[arg-type]
            cursors_s[u] += 1
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
        tallies = [tally_from_json(tally_to_json(s.tally(period))) for s in shards]
        pools = royalties.pools_for(shards[0].state, period)
        assert statement_of(tallies, pools, period) == oracle(events, period), period
        # the shards' streams, together, are the global fold's
        got = sorted(x for s in shards for x in s.streams(period))
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
    join = PlayJoin(parts)
    out1, dead1 = join.apply([first])
    assert [(u, d.key[3] if d.key else None) for u, d in out1] == [(part_of(users[0], parts), users[0])]
    out2, dead2 = join.apply([late])
    assert [(u, d.key is None) for u, d in out2] == [(part_of(users[0], parts), True),
                                                     (part_of(users[1], parts), False)]
    assert dead1 == [] and dead2 == [("p1", users[0], users[1])]
    assert join.apply([first, late]) == ([], [])  # redelivered: nothing new to send or report
    a, b = UserShard(), UserShard()
    for u, d in out1 + out2:
        (a if u == part_of(users[0], parts) else b).apply_decided(d)
    assert a.state.plays == {} and a.state.by_period == {}
    assert b.state.plays["p1"][0][3] == users[1] and b.state.plays["p1"][1] == 50_000


def test_a_decided_play_that_is_not_one_is_refused() -> None:
    import pytest

    for raw in (["p", [1, 2], 3], [1, None, 0], ["p", None, "x"]):
        with pytest.raises(ValueError):
            Decided.from_json(raw)
