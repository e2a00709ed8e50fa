"""Play assembly as a pure fold (spec/royalties.md, "Plays").

A play is every listening event sharing a ``play_id``. What a play *is* for royalties reduces to
two order-independent merges over its events:

- the **deciding event**: the earliest ``play.started`` if the play has one, else its earliest
  event, by (occurred_at, event_id). As a tuple ``key = (rank, occurred_at, event_id, user_id,
  track_id, country, product)`` with ``rank`` 0 for ``play.started`` and 1 otherwise, that is
  simply ``min(key)`` over the play's events;
- ``ms``: the largest ``ms_played`` among its progress/skipped/completed events (0 if none),
  i.e. ``max``.

Both are semilattice joins (associative, commutative, idempotent), so any permutation or
duplication of the same events gives the same play. :class:`PlaySummary` carries the join state in
a small record (with ``from_start`` and ``source_event_id`` so it can be merged again downstream),
which is what a stage keyed by user forwards to the royalty stage.

State is plain data: ``PlayState.plays`` maps play_id -> ``[key, ms, ended]`` (tuples, ints,
strings, bools). ``evolve`` updates the state in place and returns it (cheap per event).

:func:`summaries_of` is how both the live plays stage (processors/batches.py) and the replay fold
(processors/royalties.py ``fold``) assemble plays: :func:`absorb` (``evolve`` without its per-event
output) over a batch of events, then one summary per play, which the royalty view merges with ``royalties.apply_play_summary``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from processors.rules import PLAY_ENDING_TYPES, PLAY_STARTED, PLAY_TYPES

# key = (rank, occurred_at, event_id, user_id, track_id, country, product)
PlayKey = tuple[int, int, str, str, str, str, str]


class PlaySummary(NamedTuple):
    """What the royalty rules need of one play (the join of all its events seen so far)."""

    play_id: str
    user_id: str
    track_id: str
    country: str
    product: str
    play_time: int  # epoch ms UTC of the deciding event
    ms: int  # largest ms_played
    from_start: bool  # the deciding event is a play.started
    source_event_id: str  # event_id of the deciding event (ties in later merges)
    ended: bool = False  # a play.skipped / play.completed was seen

    @property
    def key(self) -> PlayKey:
        return (
            0 if self.from_start else 1,
            self.play_time,
            self.source_event_id,
            self.user_id,
            self.track_id,
            self.country,
            self.product,
        )

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlaySummary:
        return cls(**{f: d[f] for f in cls._fields if f in d})


def key_of(event: dict) -> PlayKey:
    """The deciding-event key of one listening event."""
    return (
        0 if event["type"] == PLAY_STARTED else 1,
        event["occurred_at"],
        event["event_id"],
        event["user_id"],
        event["track_id"],
        event["country"],
        event["product"],
    )


_new_summary = tuple.__new__  # PlaySummary(...) without its Python-level __new__ (hot: once per play)


def summary_of(play_id: str, key: PlayKey, ms: int, ended: bool = False) -> PlaySummary:
    return _new_summary(PlaySummary, (play_id, key[3], key[4], key[5], key[6], key[1], ms, key[0] == 0, key[2], ended))


def merge_summaries(a: PlaySummary, b: PlaySummary) -> PlaySummary:
    """The join of two summaries of the same play (order-independent, idempotent)."""
    if a.play_id != b.play_id:
        raise ValueError(f"cannot merge summaries of different plays {a.play_id!r} and {b.play_id!r}")
    return summary_of(a.play_id, min(a.key, b.key), max(a.ms, b.ms), a.ended or b.ended)


@dataclass
class PlayState:
    """play_id -> [key, ms, ended]."""

    plays: dict[str, list[Any]] = field(default_factory=dict)

    def summary(self, play_id: str) -> PlaySummary | None:
        acc = self.plays.get(play_id)
        return None if acc is None else summary_of(play_id, acc[0], acc[1], acc[2])

    def summaries(self) -> list[PlaySummary]:
        plays = self.plays
        return [summary_of(pid, *plays[pid]) for pid in sorted(plays)]

    def to_dict(self) -> dict[str, Any]:
        return {"plays": {pid: [list(a[0]), a[1], a[2]] for pid, a in self.plays.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlayState:
        return cls({pid: [tuple(a[0]), a[1], a[2]] for pid, a in d["plays"].items()})


def absorb(state: PlayState, event: dict) -> list[Any] | None:
    """Join one listening event into its play, in place: the play's ``[key, ms, ended]`` when it
    changed, else None. The whole of :func:`evolve` but its output, so a batch step that only wants
    the batch's summaries (:func:`summaries_of`) does not build one per event."""
    plays = state.plays
    pid = event["play_id"]
    acc = plays.get(pid)
    # a play.started beats any other event; among equals the earliest (occurred_at, event_id)
    if event["type"] == PLAY_STARTED:
        if acc is None:
            acc = plays[pid] = [key_of(event), 0, False]
            return acc
        best = acc[0]
        if best[0] == 1 or (event["occurred_at"], event["event_id"]) < (best[1], best[2]):
            acc[0] = key_of(event)
            return acc
        return None
    ms = event["ms_played"]
    ended = event["type"] in PLAY_ENDING_TYPES
    if acc is None:
        acc = plays[pid] = [key_of(event), ms, ended]
        return acc
    changed = False
    if ms > acc[1]:
        acc[1] = ms
        changed = True
    if ended and not acc[2]:
        acc[2] = True
        changed = True
    best = acc[0]
    if best[0] == 1 and (event["occurred_at"], event["event_id"]) < (best[1], best[2]):
        acc[0] = key_of(event)
        changed = True
    return acc if changed else None


def evolve(state: PlayState, event: dict) -> tuple[PlayState, list[PlaySummary]]:
    """Fold one event; outputs the play's new summary when it changed (other types: no output)."""
    if event["type"] not in PLAY_TYPES:
        return state, []
    acc = absorb(state, event)
    return state, ([] if acc is None else [summary_of(event["play_id"], acc[0], acc[1], acc[2])])


def apply_summary(state: PlayState, summary: PlaySummary) -> tuple[PlayState, list[PlaySummary]]:
    """Merge an already assembled summary (e.g. from another partition); outputs it if changed."""
    acc = state.plays.get(summary.play_id)
    if acc is None:
        state.plays[summary.play_id] = [summary.key, summary.ms, summary.ended]
        return state, [summary]
    new = [min(acc[0], summary.key), max(acc[1], summary.ms), acc[2] or summary.ended]
    if new == acc:
        return state, []
    state.plays[summary.play_id] = new
    return state, [summary_of(summary.play_id, new[0], new[1], new[2])]


def summaries_of(events: Iterable[dict]) -> list[PlaySummary]:
    """The plays of a batch of events (other types are passed over), one summary per play, sorted
    by play_id. Stateless: each summary is a partial join that the royalty view merges (min of the
    deciding key, max of ms), so nothing is lost across batches and a re-sent batch changes nothing."""
    state = PlayState()
    play_types = PLAY_TYPES
    for ev in events:
        if ev["type"] in play_types:
            absorb(state, ev)
    return state.summaries()
