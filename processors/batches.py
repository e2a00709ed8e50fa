"""Batch steps of the live pipeline, free of Kafka and Faust so they test without a broker.

The Faust agents (worker/app.py) only move records: they call these functions on a batch
of raw records and send what comes back. Records here are ``(topic, partition, offset, value)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import orjson

from core.timefmt import period_of
from processors import plays, royalties, snapshot
from processors.grants import check_client_event
from processors.rules import DAY_MS, ROYALTY_SOURCE_TYPES
from processors.statement import StatementLine, to_csv
from schemas.codec import Codec, EventError
from schemas.validate import decode_record
from topics.topic_catalog import topic_rule


class RawRecord(NamedTuple):
    topic: str
    partition: int
    offset: int
    value: bytes | None


class Dead(NamedTuple):
    record: RawRecord
    reason: str


def decode_batch(
    codec: Codec, records: Iterable[RawRecord], prefix: str | None = None
) -> tuple[list[tuple[RawRecord, dict]], list[Dead]]:
    """Decode wire-format records (``schemas.validate.decode_record``, the step every reader uses);
    the ones that fail (no value, bytes, trailing bytes, schema, a value out of range, an event type
    that does not belong on the record's topic, invariants) come back as Dead with the reason.

    The record's topic is its full name; ``prefix`` is the settings' topic prefix (without it, the
    catalog name is found by its ending: ``topics.topic_catalog.topic_rule``)."""
    good: list[tuple[RawRecord, dict]] = []
    dead: list[Dead] = []
    for rec in records:
        try:
            event = check_client_event(decode_record(codec, rec.value, *topic_rule(rec.topic, prefix)))
        except EventError as exc:
            dead.append(Dead(rec, exc.reason))
            continue
        good.append((rec, event))
    return good, dead


# -- plays: listening events -> play summaries --------------------------------------------------
def play_summaries(events: Iterable[dict]) -> list[plays.PlaySummary]:
    """Join a batch's listening events per play (``plays.summaries_of``, which the replay fold runs
    too). Stateless: each summary is a partial join that the royalty view merges (min of the
    deciding key, max of ms), so nothing is lost across batches and a re-sent batch changes nothing."""
    return plays.summaries_of(events)


# -- royalty inputs: small JSON facts into one partition ----------------------------------------
ROYALTY_EVENT_TYPES = ROYALTY_SOURCE_TYPES


def fact_of_summary(s: plays.PlaySummary) -> tuple[str, bytes]:
    return "p:" + s.play_id, orjson.dumps({"kind": "play", **s.to_dict()})


def fact_of_event(codec: Codec, event: dict) -> tuple[str, bytes]:
    return "e:" + event["event_id"], orjson.dumps({"kind": "event", "event": event})


FACTS_PER_RECORD = 500


def pack_facts(facts: Sequence[tuple[str, bytes]], per_record: int = FACTS_PER_RECORD) -> list[bytes]:
    """Pack facts into few ``royalty.inputs`` records (a JSON array of ``[key, fact]``): the royalty
    stage then pays Faust's per-record cost once per few hundred facts instead of once per fact."""
    out = []
    for i in range(0, len(facts), per_record):
        chunk = facts[i : i + per_record]
        out.append(b"[" + b",".join(b"[" + orjson.dumps(k) + b"," + raw + b"]" for k, raw in chunk) + b"]")
    return out


def unpack_facts(raw: bytes) -> list[tuple[bytes, bytes]]:
    """``(key, fact bytes)`` of a packed record; ValueError when it is not one."""
    try:
        items = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not a packed fact record: {exc}") from None
    if not isinstance(items, list) or not all(isinstance(x, list) and len(x) == 2 and isinstance(x[0], str)
                                              for x in items):
        raise ValueError("not a packed fact record: expected [[key, fact], ...]")
    return [(k.encode(), orjson.dumps(f)) for k, f in items]


def parse_fact(raw: bytes) -> dict[str, Any]:
    fact = orjson.loads(raw)
    if not isinstance(fact, dict):
        raise ValueError(f"a royalty fact is a JSON object, not {type(fact).__name__}")
    if fact.get("kind") not in ("play", "event"):
        raise ValueError(f"unknown royalty fact kind {fact.get('kind')!r}")
    return fact


def foreign_reason(play_id: str, user_id: str, owner: str) -> str:
    """The dead-letter reason for another user's events on a play (royalties.md "Plays")."""
    return (f"play {play_id!r}: events of user {user_id!r} are not part of the play of user {owner!r} "
            f"and count nowhere")


class RoyaltyView:
    """The live royalty view: the royalty fold over facts, the money step on request.

    A play_id carrying events of users other than the play's user (the user of its deciding event):
    those events count nowhere (the fold keeps them apart, processors/royalties.py), and
    :meth:`apply_batch` dead-letters them once the play's user is known, i.e. when the merged play
    first holds them, once per (play, other user, play's user). The plays stage cannot: listening
    events are keyed by user, so another user's events on a play arrive in another partition and
    batch; the merged play is the first place both are seen. (Their original records are the
    plays stage's input: the dead letter names the play, the users and the fact that carried them.)
    """

    def __init__(self) -> None:
        self.state = royalties.RoyaltyState()
        self.facts = 0
        self.dirty: set[str] = set()  # periods whose statement/streams may have changed
        self.all_dirty = False  # a catalog/rights/takedown fact may touch any period
        self.published: dict[str, set[str]] = {}  # period -> play ids last published as streams
        self.reported: set[tuple[str, str, str]] = set()  # (play_id, other user, play's user) dead-lettered
        # checkpoints (processors/snapshot.py): the encoded segments per key (a day's plays, a
        # period's published ids), the keys that changed since, and whether every key is tracked
        self.segments: dict[str, list[bytes]] = {}
        self.unsaved: set[str] = set()
        self.tracked = True

    def apply(self, fact: dict[str, Any]) -> str | None:
        """Fold one fact; returns the period it touched (None when not a single period)."""
        self.facts += 1
        if fact["kind"] == "play":
            summary = plays.PlaySummary.from_dict({k: v for k, v in fact.items() if k != "kind"})
            self.merge_summary(summary)
            return period_of(summary.play_time)
        event = fact["event"]
        royalties.evolve(self.state, event)
        if event["type"] == "royalty.pool_declared":
            self.dirty.add(event["period"])
            return event["period"]
        self.all_dirty = True
        return None

    def merge_summary(self, summary: plays.PlaySummary) -> None:
        """Join a play summary into the view (what :meth:`apply` does with a play fact)."""
        before = self.state.plays.get(summary.play_id)
        if before is not None:  # the merge may move the play to another day
            self.unsaved.add(snapshot.day_key(before[0][1] // DAY_MS))
        royalties.apply_play_summary(self.state, summary)
        self.touched(self.state.plays[summary.play_id][0])
        self.dirty.add(period_of(summary.play_time))

    def touched(self, key: plays.PlayKey) -> None:
        """A play with this deciding key changed: its day is saved again, its period re-published."""
        day = key[1] // DAY_MS
        self.unsaved.add(snapshot.day_key(day))
        self.dirty.add(royalties.period_of_day(day))

    def take_dirty(self) -> list[str]:
        """The periods to re-publish (and forget that they were dirty)."""
        periods = set(self.state.by_period) if self.all_dirty else self.dirty & set(self.state.by_period)
        periods |= self.dirty & set(self.published)
        self.dirty = set()
        self.all_dirty = False
        return sorted(periods)

    def stream_changes(self, period: str) -> list[tuple[str, bytes | None]]:
        """Records for the compacted ``streams`` topic: one per stream keyed by play_id, and a
        tombstone for a play that stopped being a stream (a late rights change, a takedown, the
        loop cap...). Re-publishing the same state sends the same records: idempotent by key."""
        now = {}
        for pid, country, product, canon, shares in royalties.streams_of(self.state, period):
            key, ms = self.state.plays[pid][:2]
            now[pid] = orjson.dumps({
                "play_id": pid, "period": period, "user_id": key[3], "track_id": key[4], "canonical_track_id": canon,
                "country": country, "product": product, "play_time": key[1], "ms_played": ms,
                "rightsholders": [{"rightsholder_id": rh, "share_ppm": ppm} for rh, ppm in shares],
            })
        before = self.published.get(period)
        gone = (before or set()) - set(now)
        if before is None or before != now.keys():
            self.published[period] = set(now)
            self.unsaved.add(snapshot.published_key(period))
        return [(pid, raw) for pid, raw in now.items()] + [(pid, None) for pid in sorted(gone)]

    def apply_batch(
        self, items: Iterable[tuple[bytes, bytes, Any]]
    ) -> tuple[dict[bytes, tuple[bytes, Any]], list[tuple[Any, str]]]:
        """Fold a batch of ``(key, raw fact, source)``; returns what to store per key (the merged
        play, or the event as it came) with the source of its last fact, and what to dead-letter:
        the refused facts, and other users' events on a play (with the source of the fact that
        brought them)."""
        store: dict[bytes, tuple[bytes, Any]] = {}
        bad: list[tuple[Any, str]] = []
        plays_touched: dict[bytes, tuple[str, Any]] = {}
        for key, raw, source in items:
            try:
                fact = parse_fact(raw)
                self.apply(fact)
            except (ValueError, KeyError, TypeError) as exc:
                bad.append((source, f"bad royalty fact: {exc}"))
                continue
            if fact["kind"] == "play":
                plays_touched[key] = (fact["play_id"], source)
            else:
                store[key] = (raw, source)
        for key, (pid, source) in plays_touched.items():
            k, ms, others = self.state.plays[pid]
            other = tuple((u, m, False) for u, m in sorted(others.items())) if others else ()
            merged = plays.summary_of(pid, tuple(k), ms, False, other)
            store[key] = (orjson.dumps({"kind": "play", **merged.to_dict()}), source)
            for u, _, _ in other:
                seen = (pid, u, k[3])
                if seen not in self.reported:
                    self.reported.add(seen)
                    bad.append((source, foreign_reason(pid, u, k[3])))
        return store, bad

    def statement(self, period: str) -> list[StatementLine]:
        return royalties.statement(self.state, period)

    def statement_csv(self, period: str) -> str:
        return to_csv(self.statement(period))

    def periods(self) -> list[str]:
        return sorted(self.state.by_period)

    # -- checkpoints (worker/checkpoint.py, processors/snapshot.py) -------------------------------
    def to_snapshot(self, published_acked: bool = False) -> bytes:
        """The view as a format-2 snapshot: the fold's state, what was last published as streams
        (so a stream that stops being one after a recovery still gets its tombstone) and the
        foreign users already dead-lettered (so they are not reported again). Only the periods that
        changed since the last snapshot (days, published sets) are encoded again. Reads the view, and may run in a thread
        while nothing folds into it (worker/app.py holds the view's lock)."""
        state, published, cache, unsaved = self.state, self.published, self.segments, self.unsaved
        header = snapshot.encode_header(state, self.facts, self.reported, published_acked)
        keys = set(unsaved) if self.tracked else snapshot.all_keys(state, published)
        fresh = snapshot.encode(state, published, keys)
        for k in keys:  # a day whose plays all moved to another: no segment any more
            cache.pop(k, None)
        cache.update(fresh)
        unsaved.difference_update(keys)
        self.tracked = True
        return snapshot.assemble(header, cache)

    def to_snapshot_v1(self) -> bytes:
        """The format-1 snapshot (one JSON document) that earlier versions wrote; for tests of
        reading checkpoints written before an upgrade."""
        return orjson.dumps({
            "version": 1, "facts": self.facts, "state": self.state.to_dict(),
            "published": {p: sorted(ids) for p, ids in self.published.items()},
            "reported": sorted(self.reported),
        })

    @classmethod
    def from_snapshot(cls, raw: bytes, pause: float = 0.0) -> RoyaltyView:
        """The view a snapshot holds; ValueError when ``raw`` is not one. Format 2
        (:meth:`to_snapshot`), or format 1 (one JSON document). Every period is dirty (published
        once again), unless the writer said that what it counted as published was acknowledged:
        then only what changes after the restore is published (at 4M plays, publishing every
        stream again after each recovery kept a worker busy for minutes)."""
        view = cls()
        if raw.startswith(snapshot.MAGIC):
            (view.state, view.facts, view.reported, view.published, view.segments,
             acked) = snapshot.decode(raw, pause)
            view.all_dirty = not acked
            return view
        try:
            d = orjson.loads(raw)
            if d.get("version") != 1:
                raise ValueError(f"unknown snapshot version {d.get('version')!r}")
            view.state = royalties.RoyaltyState.from_dict(d["state"])
            view.facts = int(d["facts"])
            view.published = {p: set(ids) for p, ids in d["published"].items()}
            view.reported = {tuple(x) for x in d["reported"]}  # type: ignore[misc]
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(f"not a royalty view snapshot: {exc!r}") from None
        view.all_dirty = True
        view.tracked = False  # its first format-2 snapshot encodes every day
        return view


def group_by_key(items: Sequence[tuple[str, Any]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for k, v in items:
        out.setdefault(k, []).append(v)
    return out
