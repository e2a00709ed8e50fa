"""Play assembly as a pure fold (spec/royalties.md, "Plays").

A play is the listening events sharing a ``play_id`` **that carry the play's user**: the user of its
deciding event. What a play *is* for royalties reduces to order-independent merges over its events:

- the **deciding event**: the earliest ``play.started`` if the play has one, else its earliest
  event, by (occurred_at, event_id), over every event of the play_id whatever its user. As a tuple
  ``key = (rank, occurred_at, event_id, user_id, track_id, country, product)`` with ``rank`` 0 for
  ``play.started`` and 1 otherwise, that is simply ``min(key)``; it decides the play's user;
- per user of the play_id, the largest ``ms_played`` among that user's progress/skipped/completed
  events (0 if none) and whether one of them ended the play: ``{user: (max ms, or ended)}``.

The play's ``ms`` and ``ended`` are those of the deciding user; every other user's events are not
part of the play and count nowhere (the royalty view dead-letters them, processors/batches.py).
Both merges are semilattice joins (associative, commutative, idempotent), and so is their pair, so
any permutation, batching or duplication of the same events gives the same play: a stage keyed by
user sees B's events on A's play in another partition and batch, and the royalty view's merge of
the two summaries is the play of all of them. :class:`PlaySummary` carries the join state in a
small record (with ``from_start`` and ``source_event_id`` so it can be merged again downstream, and
``others``: the other users' ``(user, ms, ended)``, empty for an ordinary play).

Client events (with ``received_at``, stamped by the API) that break the client-event rule
(processors/grants.py: a server-issued play of their user and track, times within its window)
take no part at all: :func:`absorb` passes over them, so the fold agrees with the decode step
that dead-letters them, whatever runs first.

State is plain data: ``PlayState.plays`` maps play_id -> ``[key, user, ms, ended, others]`` (the
per-user join state kept flat for the one-user play; tuples, ints, strings, bools). ``evolve``
updates the state in place and returns it (cheap per event).

:func:`summaries_of` is how both the live plays stage (processors/batches.py) and the replay fold
(processors/royalties.py ``fold``) assemble plays: :func:`absorb` (``evolve`` without its per-event
output) over a batch of events, then one summary per play, which the royalty view merges with ``royalties.apply_play_summary``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from processors.grants import client_event_reason
from processors.rules import PLAY_ENDING_TYPES, PLAY_STARTED, PLAY_TYPES

# key = (rank, occurred_at, event_id, user_id, track_id, country, product)
PlayKey = tuple[int, int, str, str, str, str, str]
# the other users of a play_id: ((user_id, ms, ended), ...) sorted by user_id
Others = tuple[tuple[str, int, bool], ...]


class PlaySummary(NamedTuple):
    """What the royalty rules need of one play (the join of all its events seen so far)."""

    play_id: str
    user_id: str
    track_id: str
    country: str
    product: str
    play_time: int  # epoch ms UTC of the deciding event
    ms: int  # largest ms_played of the play's user
    from_start: bool  # the deciding event is a play.started
    source_event_id: str  # event_id of the deciding event (ties in later merges)
    ended: bool = False  # a play.skipped / play.completed of the play's user was seen
    others: Others = ()  # other users' (user_id, ms, ended) on this play_id: they count nowhere

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

    def users(self) -> dict[str, list[Any]]:
        """The per-user join state ``{user: [ms, ended]}`` (the play's user and the others)."""
        out: dict[str, list[Any]] = {u: [m, e] for u, m, e in self.others}
        out[self.user_id] = [self.ms, self.ended]
        return out

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlaySummary:
        s = cls(**{f: d[f] for f in cls._fields if f in d})
        if not isinstance(s.others, tuple) or s.others:  # JSON gives lists
            s = s._replace(others=tuple((str(u), int(m), bool(e)) for u, m, e in s.others))
        return s


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


def summary_of(play_id: str, key: PlayKey, ms: int, ended: bool = False, others: Others = ()) -> PlaySummary:
    return _new_summary(PlaySummary, (play_id, key[3], key[4], key[5], key[6], key[1], ms, key[0] == 0, key[2], ended,
                                      others))


def summary_of_users(play_id: str, key: PlayKey, users: dict[str, list[Any]]) -> PlaySummary:
    """The summary of a play's join state: the deciding key and ``{user: [ms, ended]}``."""
    owner = key[3]
    if len(users) == 1:
        mine = users.get(owner)
        if mine is not None:
            return summary_of(play_id, key, mine[0], mine[1])
    mine = users.get(owner)
    ms, ended = (mine[0], mine[1]) if mine is not None else (0, False)
    others = tuple(sorted((u, v[0], v[1]) for u, v in users.items() if u != owner))
    return summary_of(play_id, key, ms, ended, others)


def _join_users(into: dict[str, list[Any]], src: dict[str, list[Any]]) -> bool:
    """Pointwise join (max of ms, or of ended) of ``src`` into ``into``; True when ``into`` changed."""
    changed = False
    for u, (ms, ended) in src.items():
        cur = into.get(u)
        if cur is None:
            into[u] = [ms, ended]
            changed = True
            continue
        if ms > cur[0]:
            cur[0] = ms
            changed = True
        if ended and not cur[1]:
            cur[1] = True
            changed = True
    return changed


def merge_summaries(a: PlaySummary, b: PlaySummary) -> PlaySummary:
    """The join of two summaries of the same play (order-independent, idempotent)."""
    if a.play_id != b.play_id:
        raise ValueError(f"cannot merge summaries of different plays {a.play_id!r} and {b.play_id!r}")
    users = a.users()
    _join_users(users, b.users())
    return summary_of_users(a.play_id, min(a.key, b.key), users)


def _users_of(acc: list[Any]) -> dict[str, list[Any]]:
    """``{user: [ms, ended]}`` of a PlayState entry (a copy)."""
    users = {acc[1]: [acc[2], acc[3]]}
    if acc[4]:
        for u, v in acc[4].items():
            users[u] = [v[0], v[1]]
    return users


def _entry(key: PlayKey, users: dict[str, list[Any]]) -> list[Any]:
    """A PlayState entry for a join state: the play's user first, the other users apart."""
    owner = key[3]
    first = users.get(owner)
    if first is None:  # cannot happen for a state built from events: the deciding event's user is a user
        owner, first = next(iter(users.items()))
    others = {u: [v[0], v[1]] for u, v in users.items() if u != owner}
    return [key, owner, first[0], first[1], others or None]


def _summary(play_id: str, acc: list[Any]) -> PlaySummary:
    key = acc[0]
    if acc[4] is None and key[3] == acc[1]:  # one user: nearly every play
        return summary_of(play_id, key, acc[2], acc[3])
    return summary_of_users(play_id, key, _users_of(acc))


@dataclass
class PlayState:
    """play_id -> [key, user, ms, ended, others]: ``user`` the first user seen on the play_id with its
    largest ms and whether it ended the play, ``others`` None or ``{other user: [ms, ended]}`` (the
    join state ``{user: [ms, ended]}``, kept flat for the common one-user play)."""

    plays: dict[str, list[Any]] = field(default_factory=dict)

    def summary(self, play_id: str) -> PlaySummary | None:
        acc = self.plays.get(play_id)
        return None if acc is None else _summary(play_id, acc)

    def summaries(self) -> list[PlaySummary]:
        plays = self.plays
        return [_summary(pid, plays[pid]) for pid in sorted(plays)]

    def to_dict(self) -> dict[str, Any]:
        return {"plays": {pid: [list(a[0]), _users_of(a)] for pid, a in self.plays.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlayState:
        return cls({pid: _entry(tuple(a[0]), a[1]) for pid, a in d["plays"].items()})


def _other(acc: list[Any], user: str, ms: int, ended: bool) -> bool:
    """Join another user's (ms, ended) into an entry; True when it changed (rare: a foreign event)."""
    if acc[4] is None:
        acc[4] = {}
    return _join_users(acc[4], {user: [ms, ended]})


def absorb(state: PlayState, event: dict) -> list[Any] | None:
    """Join one listening event into its play, in place: the play's entry when it changed, else
    None. The whole of :func:`evolve` but its output, so a batch step that only wants the batch's
    summaries (:func:`summaries_of`) does not build one per event. A client event that breaks the
    client-event rule (processors/grants.py) changes nothing: it is not part of any play."""
    if event.get("received_at") is not None and client_event_reason(event):
        return None
    plays = state.plays
    pid = event["play_id"]
    user = event["user_id"]
    acc = plays.get(pid)
    # a play.started beats any other event; among equals the earliest (occurred_at, event_id)
    if event["type"] == PLAY_STARTED:
        if acc is None:
            acc = plays[pid] = [key_of(event), user, 0, False, None]
            return acc
        changed = user != acc[1] and _other(acc, user, 0, False)
        best = acc[0]
        if best[0] == 1 or (event["occurred_at"], event["event_id"]) < (best[1], best[2]):
            acc[0] = key_of(event)
            changed = True
        return acc if changed else None
    ms = event["ms_played"]
    ended = event["type"] in PLAY_ENDING_TYPES
    if acc is None:
        acc = plays[pid] = [key_of(event), user, ms, ended, None]
        return acc
    changed = False
    if user == acc[1]:
        if ms > acc[2]:
            acc[2] = ms
            changed = True
        if ended and not acc[3]:
            acc[3] = True
            changed = True
    else:
        changed = _other(acc, user, ms, ended)
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
    return state, ([] if acc is None else [_summary(event["play_id"], acc)])


def apply_summary(state: PlayState, summary: PlaySummary) -> tuple[PlayState, list[PlaySummary]]:
    """Merge an already assembled summary (e.g. from another partition); outputs it if changed."""
    pid = summary.play_id
    acc = state.plays.get(pid)
    if acc is None:
        acc = state.plays[pid] = _entry(summary.key, summary.users())
        return state, [_summary(pid, acc)]
    users = _users_of(acc)
    changed = _join_users(users, summary.users())
    key = acc[0]
    if summary.key < key:
        key = summary.key
        changed = True
    if not changed:
        return state, []
    acc = state.plays[pid] = _entry(key, users)
    return state, [_summary(pid, acc)]


def summaries_of(events: Iterable[dict]) -> list[PlaySummary]:
    """The plays of a batch of events (other types are passed over), one summary per play, sorted
    by play_id. Stateless: each summary is a partial join that the royalty view merges (min of the
    deciding key, per user max of ms), so nothing is lost across batches and a re-sent batch changes nothing."""
    state = PlayState()
    play_types = PLAY_TYPES
    for ev in events:
        if ev["type"] in play_types:
            absorb(state, ev)
    return state.summaries()
