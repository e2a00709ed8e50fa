"""The royalty view as a pure fold (spec/royalties.md), exact to the micro in any event order.

``evolve(state, event)`` folds play.*, track.ingested, rights.changed, track.taken_down and
royalty.pool_declared events (other types are ignored) into a :class:`RoyaltyState`;
``statement(state, period)`` gives the statement lines.

How it stays exact whatever the order (DESIGN.md, "Late events and exact money"):

- Every merge is a join that ignores order and duplicates: plays keep ``min`` of their deciding
  key and, per user of the play_id, ``max`` of ms; the play's ms is its deciding user's, the other
  users' events count nowhere (kept apart only so that the join stays exact in any order). Plays
  enter the view only as summaries assembled by processors/plays.py (``summaries_of``) and merged
  by :func:`apply_play_summary`: the live plays stage and royalty agent run exactly these, and so
  does :func:`fold` (the replay engine). Catalog, rights,
  takedown and pool events are kept in lists sorted by (occurred_at, event_id), an event_id
  already present is not added again; ISRC canonicalization is the catalog's ``CatalogIndex``.
  So nothing is decided at fold time: a late track.ingested, rights.changed or takedown is just
  recorded, and whatever it changes is re-decided at statement time.
- Plays are indexed per period by (user, UTC day) - the unit of the fraud rules - so a statement
  only visits the plays of its period, one (user, day) group at a time. Eligibility per play looks
  up the catalog (ISRC canon, shares), rights and takedowns by (canonical track, country), each
  resolved once per statement and cached.
- The money step (pool x shares, floor + largest remainder) runs on the per (country, product)
  tallies, in integers only.

The statement splits into :func:`tally` (streams and share weights per line; tallies of states
holding disjoint sets of users can be summed with :func:`merge_tallies`, since both fraud rules are
per user) and :func:`allocate` (the money step, global per (period, country, product)).
"""

from __future__ import annotations

import operator
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from core.timefmt import period_of
from processors import plays
from processors.catalog import CatalogIndex
from processors.plays import Others, PlayKey, PlaySummary
from processors.rules import (
    DAY_MS,
    IMPOSSIBLE_MS,
    LOOP_CAP,
    MIN_STREAM_MS,
    PLAY_TYPES,
    PPM,
    ROYALTY_SOURCE_TYPES,
    ROYALTY_TYPES,
    rights_allow,
    takedown_covers,
)
from processors.statement import StatementLine

#: plays are assembled per batch of this many listening events, as the live plays stage does
FOLD_BATCH = 20_000

Shares = tuple[tuple[str, int], ...]  # ((rightsholder_id, share_ppm), ...)
_id2 = operator.itemgetter(0, 1)  # (occurred_at, event_id) of a stored catalog/rights/pool entry


@lru_cache(maxsize=65536)
def period_of_day(day: int) -> str:
    """``YYYY-MM`` of a UTC day number."""
    return period_of(day * DAY_MS)


def _insert(entries: list, item: tuple) -> bool:
    """Insert into a list sorted by (occurred_at, event_id) unless that event is already there."""
    k = (item[0], item[1])
    i = bisect_left(entries, k, key=_id2)
    if i < len(entries) and _id2(entries[i]) == k:
        return False
    entries.insert(i, item)
    return True


@dataclass
class RoyaltyState:
    # play_id -> [key, ms, others]; key = (rank, play_time, event_id, user, track, country, product),
    # ms = the largest ms_played of the play's user (key[3]); others = None, or {other user: their
    # largest ms} for a play_id that also carries other users' events (they count nowhere)
    plays: dict[str, list[Any]] = field(default_factory=dict)
    # period -> (user_id, day) -> play ids (derived from plays; rebuilt by from_dict)
    by_period: dict[str, dict[tuple[str, int], set[str]]] = field(default_factory=dict)
    # ISRC canonicalization (a track's ISRC, an ISRC's canonical track): the catalog's own index
    catalog: CatalogIndex = field(default_factory=CatalogIndex)
    # isrc -> [(occurred_at, event_id, track_id, shares)] sorted
    ingests: dict[str, list[tuple[int, str, str, Shares]]] = field(default_factory=dict)
    # (track_id as sent, territory) -> [(occurred_at, event_id, allowed, valid_from, valid_to)] sorted
    rights: dict[tuple[str, str], list[tuple[int, str, bool, int | None, int | None]]] = field(
        default_factory=dict
    )
    # track_id as sent -> [(occurred_at, event_id, territories)] sorted
    takedowns: dict[str, list[tuple[int, str, tuple[str, ...]]]] = field(default_factory=dict)
    # (period, country, product) -> (occurred_at, event_id, amount_micros) of the latest declaration
    pools: dict[tuple[str, str, str], tuple[int, str, int]] = field(default_factory=dict)

    # -- plain-data form (JSON-compatible) ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"plays": self.plays_dict(self.plays), **self.tables_dict()}

    @staticmethod
    def plays_dict(plays: dict[str, list[Any]], pids: Iterable[str] | None = None) -> dict[str, list[Any]]:
        """Plays (all, or those of ``pids``) as plain data: ``pid -> [key, ms]`` (+ others)."""
        if pids is None:
            return {pid: [list(a[0]), a[1]] + ([a[2]] if a[2] else []) for pid, a in plays.items()}
        out = {}
        for pid in pids:
            a = plays[pid]
            out[pid] = [list(a[0]), a[1]] + ([a[2]] if a[2] else [])
        return out

    def tables_dict(self) -> dict[str, Any]:
        """Everything but the plays, as plain data (catalog, ingests, rights, takedowns, pools)."""
        return {
            "catalog": self.catalog.to_dict(),
            "ingests": {
                isrc: [[o, e, t, [list(s) for s in sh]] for o, e, t, sh in lst]
                for isrc, lst in self.ingests.items()
            },
            "rights": [[t, terr, [list(x) for x in lst]] for (t, terr), lst in self.rights.items()],
            "takedowns": {t: [[o, e, list(ter)] for o, e, ter in lst] for t, lst in self.takedowns.items()},
            "pools": [[*k, *v] for k, v in self.pools.items()],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RoyaltyState:
        st = cls.from_tables(d)
        st.add_plays(d["plays"])
        return st

    @classmethod
    def from_tables(cls, d: dict[str, Any]) -> RoyaltyState:
        """A state with the tables of :meth:`tables_dict` and no plays."""
        return cls(
            catalog=CatalogIndex.from_dict(d["catalog"]),
            ingests={
                isrc: [(o, e, t, tuple((s[0], s[1]) for s in sh)) for o, e, t, sh in lst]
                for isrc, lst in d["ingests"].items()
            },
            rights={(t, terr): [tuple(x) for x in lst] for t, terr, lst in d["rights"]},
            takedowns={t: [(o, e, tuple(ter)) for o, e, ter in lst] for t, lst in d["takedowns"].items()},
            pools={(p[0], p[1], p[2]): (p[3], p[4], p[5]) for p in d["pools"]},
        )

    def merge_play(self, pid: str, key: PlayKey, ms: int, others: Others = ()) -> None:
        """Join one play (its deciding key, its user's ms, other users' ms) into the state."""
        _merge_play(self, pid, key, ms, others)

    def add_plays(self, plays_data: dict[str, list[Any]]) -> None:
        """Join plays given as :meth:`plays_dict` data into the state."""
        for pid, acc in plays_data.items():
            others = tuple((u, m, False) for u, m in acc[2].items()) if len(acc) > 2 and acc[2] else ()
            _merge_play(self, pid, tuple(acc[0]), acc[1], others)


# -- folding ------------------------------------------------------------------------------------
def _index_add(state: RoyaltyState, pid: str, key: PlayKey) -> None:
    day = key[1] // DAY_MS
    period = period_of_day(day)
    groups = state.by_period.get(period)
    if groups is None:
        groups = state.by_period[period] = {}
    group_key = (key[3], day)
    members = groups.get(group_key)
    if members is None:
        groups[group_key] = {pid}
    else:
        members.add(pid)


def _index_remove(state: RoyaltyState, pid: str, key: PlayKey) -> None:
    day = key[1] // DAY_MS
    period = period_of_day(day)
    groups = state.by_period[period]
    members = groups[(key[3], day)]
    members.discard(pid)
    if not members:
        del groups[(key[3], day)]
        if not groups:
            del state.by_period[period]


def _merge_play(state: RoyaltyState, pid: str, key: PlayKey, ms: int, others: Others = ()) -> None:
    """Join a play summary (deciding key, its user's ms, the other users' ms) into the view."""
    acc = state.plays.get(pid)
    if acc is None:
        state.plays[pid] = [key, ms, {o[0]: o[1] for o in others} or None]
        _index_add(state, pid, key)
        return
    old = acc[0]
    if not others and acc[2] is None and key[3] == old[3]:  # one user, as nearly every play
        if ms > acc[1]:
            acc[1] = ms
        if key < old:
            acc[0] = key
            if key[1] // DAY_MS != old[1] // DAY_MS:
                _index_remove(state, pid, old)
                _index_add(state, pid, key)
        return
    users = dict(acc[2] or ())
    users[old[3]] = acc[1]
    for u, m in ((key[3], ms), *((o[0], o[1]) for o in others)):
        cur = users.get(u)
        if cur is None or m > cur:
            users[u] = m
    new = key if key < old else old
    acc[0] = new
    acc[1] = users.pop(new[3], 0)
    acc[2] = users or None
    if new is not old and (new[3] != old[3] or new[1] // DAY_MS != old[1] // DAY_MS):
        _index_remove(state, pid, old)
        _index_add(state, pid, new)


def _on_track_ingested(state: RoyaltyState, ev: dict) -> None:
    occ, eid, tid, isrc = ev["occurred_at"], ev["event_id"], ev["track_id"], ev["isrc"]
    state.catalog.evolve(ev)
    shares = tuple((r["rightsholder_id"], r["share_ppm"]) for r in ev["rightsholders"])
    _insert(state.ingests.setdefault(isrc, []), (occ, eid, tid, shares))


def _on_rights_changed(state: RoyaltyState, ev: dict) -> None:
    _insert(
        state.rights.setdefault((ev["track_id"], ev["territory"]), []),
        (ev["occurred_at"], ev["event_id"], ev["allowed"], ev["valid_from"], ev["valid_to"]),
    )


def _on_taken_down(state: RoyaltyState, ev: dict) -> None:
    _insert(
        state.takedowns.setdefault(ev["track_id"], []),
        (ev["occurred_at"], ev["event_id"], tuple(ev["territories"])),
    )


def _on_pool(state: RoyaltyState, ev: dict) -> None:
    k = (ev["period"], ev["country"], ev["product"])
    cur = state.pools.get(k)
    new = (ev["occurred_at"], ev["event_id"], ev["amount_micros"])
    if cur is None or (new[0], new[1]) > (cur[0], cur[1]):
        state.pools[k] = new


# the non-play events; plays are assembled by processors/plays.py and merged by apply_play_summary
_HANDLERS = {
    "track.ingested": _on_track_ingested,
    "rights.changed": _on_rights_changed,
    "track.taken_down": _on_taken_down,
    "royalty.pool_declared": _on_pool,
}
assert frozenset(_HANDLERS) == ROYALTY_SOURCE_TYPES
HANDLED_TYPES = ROYALTY_TYPES


def apply_play_summary(state: RoyaltyState, summary: PlaySummary) -> tuple[RoyaltyState, tuple[()]]:
    """Merge a play summary (processors/plays.py) into the view: min of the deciding key, per user
    max of ms. The only way plays enter the view, live (facts from the plays stage) and in :func:`fold`."""
    _merge_play(state, summary.play_id, summary.key, summary.ms, summary.others)
    return state, ()


def evolve(state: RoyaltyState, event: dict) -> tuple[RoyaltyState, tuple[()]]:
    """Fold one (valid) event into the state, in place. No outputs: statements are asked for."""
    etype = event["type"]
    if etype in PLAY_TYPES:
        for summary in plays.summaries_of((event,)):
            apply_play_summary(state, summary)
        return state, ()
    handler = _HANDLERS.get(etype)
    if handler is not None:
        handler(state, event)
    return state, ()


def fold(events: Iterable[dict], state: RoyaltyState | None = None) -> RoyaltyState:
    """Fold many events (the replay path), with the live path's functions: listening events are
    assembled into plays per batch of :data:`FOLD_BATCH` by ``plays.summaries_of`` (what the live
    plays stage runs on each batch) and merged by :func:`apply_play_summary` (what the live royalty
    view runs on each play fact); the other events go to the same handlers as :func:`evolve`."""
    state = state if state is not None else RoyaltyState()
    handlers = _HANDLERS
    play_types = PLAY_TYPES
    batch: list[dict] = []
    add = batch.append
    for ev in events:
        etype = ev["type"]
        if etype in play_types:
            add(ev)
            if len(batch) >= FOLD_BATCH:
                _apply_plays(state, batch)
                batch.clear()
        else:
            handler = handlers.get(etype)
            if handler is not None:
                handler(state, ev)
    _apply_plays(state, batch)
    return state


def _apply_plays(state: RoyaltyState, events: list[dict]) -> None:
    for summary in plays.summaries_of(events):
        apply_play_summary(state, summary)


# -- deciding streams ---------------------------------------------------------------------------
class _Resolver:
    """Catalog / rights / takedown lookups for one statement, each resolved once and cached."""

    def __init__(self, state: RoyaltyState):
        self.s = state
        self._canon: dict[str, str | None] = {}
        self._aliases: dict[str, list[str]] = {}
        self._shares: dict[str, tuple[list[int], list] | None] = {}
        self._rights: dict[tuple[str, str], tuple[list[int], list]] = {}
        self._takedown: dict[tuple[str, str], int | None] = {}

    def canon(self, track_id: str) -> str | None:
        try:
            return self._canon[track_id]
        except KeyError:
            c = self._canon[track_id] = self.s.catalog.canonical_id(track_id)
            return c

    def aliases(self, canon: str) -> list[str]:
        """Every known track_id whose canonical id is ``canon`` (canon included)."""
        try:
            return self._aliases[canon]
        except KeyError:
            members = self._aliases[canon] = self.s.catalog.members(canon)
            return members

    def shares(self, canon: str, t: int) -> Shares | None:
        """Shares of the latest track.ingested with canon's ISRC and occurred_at <= t."""
        cached = self._shares.get(canon, False)
        if cached is False:
            entries = self.s.ingests[self.s.catalog.isrc_of(canon)]
            cached = self._shares[canon] = ([e[0] for e in entries], entries)
        occs, entries = cached
        i = bisect_right(occs, t) - 1
        return entries[i][3] if i >= 0 else None

    def rights_allow(self, canon: str, country: str, t: int) -> bool:
        k = (canon, country)
        cached = self._rights.get(k)
        if cached is None:
            merged: list = []
            for a in self.aliases(canon):
                merged.extend(self.s.rights.get((a, country), ()))
            merged.sort(key=_id2)
            cached = self._rights[k] = ([e[0] for e in merged], merged)
        occs, entries = cached
        i = bisect_right(occs, t) - 1
        return rights_allow(entries[i] if i >= 0 else None, t)

    def taken_down(self, canon: str, country: str, t: int) -> bool:
        k = (canon, country)
        if k not in self._takedown:
            first = None
            for a in self.aliases(canon):
                for occ, _, territories in self.s.takedowns.get(a, ()):
                    if takedown_covers(territories, country) and (first is None or occ < first):
                        first = occ
            self._takedown[k] = first
        first = self._takedown[k]
        return first is not None and first <= t

    def stream_shares(self, track_id: str, country: str, t: int) -> tuple[str, Shares] | None:
        """(canon, shares) when rules 2-5 hold for a play of ``track_id`` in ``country`` at ``t``."""
        canon = self.canon(track_id)
        if canon is None:
            return None
        if not self.rights_allow(canon, country, t) or self.taken_down(canon, country, t):
            return None
        shares = self.shares(canon, t)
        if shares is None:
            return None
        return canon, shares


@dataclass
class Tally:
    """Per (country, product): stream count S and per (rightsholder_id, canon) [streams, sum ppm]."""

    streams: dict[tuple[str, str], int] = field(default_factory=dict)
    lines: dict[tuple[str, str], dict[tuple[str, str], list[int]]] = field(default_factory=dict)


def streams_of(state: RoyaltyState, period: str) -> list[tuple[str, str, str, str, Shares]]:
    """The plays of ``period`` that are streams: (play_id, country, product, canon, shares)."""
    groups = state.by_period.get(period)
    if not groups:
        return []
    res = _Resolver(state)
    plays = state.plays
    out = []
    for pids in groups.values():
        accs = [(pid, plays[pid]) for pid in pids]
        if sum(a[1] for _, a in accs) > IMPOSSIBLE_MS:
            continue  # impossible listening: every play of the user that day counts, eligible or not
        by_canon: dict[str, list] = {}
        for pid, acc in accs:
            key, ms = acc[0], acc[1]
            if ms < MIN_STREAM_MS:
                continue
            decided = res.stream_shares(key[4], key[5], key[1])
            if decided is None:
                continue
            canon, shares = decided
            entry = (key[1], pid, key[5], key[6], shares)
            lst = by_canon.get(canon)
            if lst is None:
                by_canon[canon] = [entry]
            else:
                lst.append(entry)
        for canon, lst in by_canon.items():
            if len(lst) > LOOP_CAP:
                lst.sort(key=_id2)  # (play_time, play_id)
                del lst[LOOP_CAP:]
            for _, pid, country, product, shares in lst:
                out.append((pid, country, product, canon, shares))
    return out


def tally(state: RoyaltyState, period: str) -> Tally:
    counts: dict[tuple[str, str, str, Shares], int] = {}
    for _, country, product, canon, shares in streams_of(state, period):
        k = (country, product, canon, shares)
        counts[k] = counts.get(k, 0) + 1
    t = Tally()
    for (country, product, canon, shares), n in counts.items():
        cp = (country, product)
        t.streams[cp] = t.streams.get(cp, 0) + n
        lines = t.lines.setdefault(cp, {})
        for rh, ppm in shares:
            if ppm > 0:
                acc = lines.get((rh, canon))
                if acc is None:
                    lines[(rh, canon)] = [n, n * ppm]
                else:
                    acc[0] += n
                    acc[1] += n * ppm
    return t


def merge_tallies(tallies: Iterable[Tally]) -> Tally:
    """Sum tallies of states that hold disjoint sets of users (e.g. one per partition)."""
    out = Tally()
    for t in tallies:
        for cp, n in t.streams.items():
            out.streams[cp] = out.streams.get(cp, 0) + n
        for cp, lines in t.lines.items():
            dst = out.lines.setdefault(cp, {})
            for k, (n, w) in lines.items():
                acc = dst.setdefault(k, [0, 0])
                acc[0] += n
                acc[1] += w
    return out


def pools_for(state: RoyaltyState, period: str) -> dict[tuple[str, str], int]:
    """Pool P per (country, product) of ``period`` (latest declaration)."""
    return {(c, p): v[2] for (per, c, p), v in state.pools.items() if per == period}


def allocate(t: Tally, pools: dict[tuple[str, str], int], period: str) -> list[StatementLine]:
    """The money step: floor of P*W/(S*1e6) per line, leftover micros by largest remainder."""
    out: list[StatementLine] = []
    for cp, lines in t.lines.items():
        s = t.streams.get(cp, 0)
        if s <= 0:
            continue
        pool = pools.get(cp, 0)
        den = s * PPM
        rows = []
        total = 0
        for (rh, canon), (n, w) in lines.items():
            if n <= 0:
                continue
            q, r = divmod(pool * w, den)
            total += q
            rows.append([r, rh, canon, n, q])
        leftover = pool - total
        if leftover:
            rows.sort(key=lambda x: (-x[0], x[1], x[2]))
            if leftover > len(rows):  # impossible when every stream's shares sum to 1e6
                raise ValueError(f"{period} {cp}: {leftover} micros left over for {len(rows)} lines")
            for row in rows[:leftover]:
                row[4] += 1
        country, product = cp
        out.extend(StatementLine(period, country, product, rh, canon, n, q) for _, rh, canon, n, q in rows)
    out.sort()
    return out


def statement(state: RoyaltyState, period: str) -> list[StatementLine]:
    """The statement lines of ``period`` (sorted; only lines with streams > 0)."""
    return allocate(tally(state, period), pools_for(state, period), period)
