"""The royalty computation in parts that scale out (issue 13): pure steps, no Kafka, no Faust.

One owner holding every play does not grow with workers. The statement splits along what its
rules need (spec/royalties.md, DESIGN.md "Hard parts"):

1. **Play join**, partitioned by ``play_id`` (:class:`PlayJoin`). A play is the events sharing a
   play_id that carry the play's user, the user of its deciding event, so the join needs every
   summary of a play_id in one place, whoever sent it. It holds the join (min of the deciding key,
   per user max of ms), dead-letters other users' events on a play once, and sends each play as
   decided (:class:`Decided`) to the partition of the play's user, only when that changed. When
   the play's user changes (a lower deciding key from another user arrived late), the play is
   removed from the old user's partition (a ``Decided`` with ``key=None``).
2. **User shard**, partitioned by the play's user (:class:`UserShard`): the fraud rules are per
   user and day (impossible listening) and per (user, canonical track, day) (loop cap), so a shard
   holding every play of its users decides their streams. Catalog, rights, takedowns and pools
   are small and global: every shard folds all of them (they are broadcast to every partition).
   A shard's output is its :func:`processors.royalties.tally` per period: streams and share
   weights per (country, product) line.
3. **Money step**, global per (period, country, product) and cheap (:func:`statement_of`): the
   shards' tallies summed (:func:`processors.royalties.merge_tallies`: they hold disjoint users),
   then :func:`processors.royalties.allocate` with the period's pools.

Every step is a join or latest-wins, so redelivery and any interleaving of the partitions give the
statement of the global fold, to the micro (tests/unit/test_royalty_parts.py checks it against the
literal oracle of spec/royalties.md on adversarial event sets). The global fold
(:func:`processors.royalties.fold`) stays what replay runs; both use the same merge, tally and
allocate functions.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from processors import royalties
from processors.batches import RoyaltyView, parse_fact, unpack_facts
from processors.plays import PlayKey, PlaySummary
from processors.royalties import Tally
from processors.statement import StatementLine


def part_of(key: str, parts: int) -> int:
    """The partition of a play_id or user_id among ``parts`` (stable across processes)."""
    return zlib.crc32(key.encode()) % parts


@dataclass(frozen=True)
class Decided:
    """A play as its join decided it, for the partition of its user; ``key=None``: the play is no
    longer this partition's (another user's event decides it now)."""

    play_id: str
    key: PlayKey | None
    ms: int = 0

    def to_json(self) -> list[Any]:
        return [self.play_id, list(self.key) if self.key is not None else None, self.ms]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Decided:
        pid, key, ms = raw
        if not isinstance(pid, str) or not isinstance(ms, int) or (key is not None and len(key) != 7):
            raise ValueError(f"not a decided play: {raw!r}")
        return cls(pid, tuple(key) if key is not None else None, ms)  # type: ignore[arg-type]


class PlayJoin:
    """Stage 1, one per play partition: the join of every summary of its play_ids, held in a
    :class:`RoyaltyView` (its plays and reported foreign users; checkpointed like any view)."""

    def __init__(self, view: RoyaltyView, user_parts: int) -> None:
        self.view = view
        self.user_parts = user_parts

    def apply(self, summaries: Iterable[PlaySummary]) -> tuple[list[tuple[int, Decided]], list[tuple[str, str, str]]]:
        """Join a batch of summaries; returns ``(user partition, decided play)`` to send, in order,
        and the ``(play_id, other user, play's user)`` to dead-letter (once each)."""
        view = self.view
        plays = view.state.plays
        before: dict[str, tuple[PlayKey, int] | None] = {}
        for s in summaries:
            if s.play_id not in before:
                acc = plays.get(s.play_id)
                before[s.play_id] = (acc[0], acc[1]) if acc is not None else None
            view.merge_summary(s)
            view.facts += 1
        out: list[tuple[int, Decided]] = []
        foreign: list[tuple[str, str, str]] = []
        for pid, was in before.items():
            key, ms, others = plays[pid]
            if was != (key, ms):
                part = part_of(key[3], self.user_parts)
                if was is not None and part_of(was[0][3], self.user_parts) != part:
                    out.append((part_of(was[0][3], self.user_parts), Decided(pid, None)))
                out.append((part, Decided(pid, key, ms)))
            for user in sorted(others or ()):
                seen = (pid, user, key[3])
                if seen not in view.reported:
                    view.reported.add(seen)
                    foreign.append(seen)
        return out, foreign


class UserShard:
    """Stage 2, one per user partition: the decided plays of its users and every catalog, rights,
    takedown and pool event, in a :class:`RoyaltyView` (streams, statements' tallies, checkpoints)."""

    def __init__(self, view: RoyaltyView) -> None:
        self.view = view

    def apply_decided(self, d: Decided) -> None:
        """Set or remove a decided play.

        A decided play only moves forward for a given user (its key can only go down, its ms up:
        the join's min and max), so a set is a join too and a redelivered older record changes
        nothing; a removal is followed by a set again if the play comes back to this user."""
        view = self.view
        st = view.state
        acc = st.plays.get(d.play_id)
        if acc is not None and (d.key is None or acc[0][3] != d.key[3]):  # gone, or another user's now
            royalties._index_remove(st, d.play_id, acc[0])
            del st.plays[d.play_id]
            view.touched(acc[0])
        if d.key is not None:
            royalties._merge_play(st, d.play_id, d.key, d.ms)
            view.touched(st.plays[d.play_id][0])
        view.facts += 1

    def apply_event(self, event: dict) -> None:
        """A catalog, rights, takedown or pool event (plays come as decided plays only)."""
        self.view.apply({"kind": "event", "event": event})

    def tally(self, period: str) -> Tally:
        return royalties.tally(self.view.state, period)

    def streams(self, period: str) -> list[tuple[str, str, str, str, royalties.Shares]]:
        return royalties.streams_of(self.view.state, period)


# -- the records of the stages (what the agents and a recovery fold: one code path) -----------------
def decided_record(d: Decided) -> tuple[str, bytes]:
    return "d:" + d.play_id, orjson.dumps(d.to_json())


def event_record(event: dict) -> tuple[str, bytes]:
    return "e:" + event["event_id"], orjson.dumps({"kind": "event", "event": event})


def join_records(view: RoyaltyView, user_parts: int, values: list[bytes]) -> tuple[
        list[tuple[int, Decided]], list[tuple[int, tuple[str, str, str]]], list[tuple[int, str]]]:
    """Stage 1 on a batch of ``royalty.inputs`` record values (packed play facts): the decided
    plays to send per user partition; the foreign users to dead-letter, with the index in
    ``values`` of the record that brought the play's latest summary; and the records that are not
    packed play facts (index, reason)."""
    summaries: list[PlaySummary] = []
    source: dict[str, int] = {}
    bad: list[tuple[int, str]] = []
    for i, raw in enumerate(values):
        try:
            got = []
            for _, f in unpack_facts(raw):
                fact = parse_fact(f)
                if fact["kind"] != "play":
                    raise ValueError(f"a {fact['kind']} fact on royalty.inputs (plays only)")
                got.append(PlaySummary.from_dict({k: v for k, v in fact.items() if k != "kind"}))
        except (ValueError, KeyError, TypeError) as exc:
            bad.append((i, f"bad royalty fact: {exc}"))
            continue
        summaries += got
        for summary in got:
            source[summary.play_id] = i
    out, foreign = PlayJoin(view, user_parts).apply(summaries)
    return out, [(source[f[0]], f) for f in foreign], bad


def shard_records(view: RoyaltyView, values: list[bytes]) -> list[tuple[int, str]]:
    """Stage 2 on a batch of ``royalty.plays`` record values (packed decided plays and events);
    returns the records it refused (index in ``values``, reason)."""
    shard = UserShard(view)
    bad: list[tuple[int, str]] = []
    for i, raw in enumerate(values):
        try:
            items = unpack_facts(raw)
            for key, f in items:
                if key.startswith(b"d:"):
                    shard.apply_decided(Decided.from_json(orjson.loads(f)))
                else:
                    fact = parse_fact(f)
                    if fact["kind"] != "event":
                        raise ValueError("a play fact on royalty.plays (decided plays only)")
                    shard.apply_event(fact["event"])
        except (ValueError, KeyError, TypeError) as exc:
            bad.append((i, f"bad royalty.plays record: {exc}"))
    return bad


def statement_of(tallies: Iterable[Tally], pools: dict[tuple[str, str], int], period: str) -> list[StatementLine]:
    """Stage 3: the period's statement from every shard's tally and the period's pools."""
    return royalties.allocate(royalties.merge_tallies(tallies), pools, period)


# -- tallies as plain data (the shards' records for the money step) ----------------------------------
def tally_to_json(t: Tally) -> dict[str, Any]:
    return {"streams": [[c, p, n] for (c, p), n in sorted(t.streams.items())],
            "lines": [[c, p, rh, canon, n, w] for (c, p), lines in sorted(t.lines.items())
                      for (rh, canon), (n, w) in sorted(lines.items())]}


def tally_from_json(d: dict[str, Any]) -> Tally:
    t = Tally()
    for c, p, n in d["streams"]:
        t.streams[(c, p)] = int(n)
    for c, p, rh, canon, n, w in d["lines"]:
        t.lines.setdefault((c, p), {})[(rh, canon)] = [int(n), int(w)]
    return t
