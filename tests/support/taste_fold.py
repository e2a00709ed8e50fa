"""What the worker's taste stage does, without a broker: fold listening events with
:mod:`processors.taste_view` (the stage's own fold) and hand the ``view.taste`` documents to a replica."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from processors import taste_view


class TasteFolder:
    def __init__(self, replica: Any) -> None:
        self.replica = replica
        self.states: dict[str, dict] = {}

    def info(self, track_id: str) -> tuple[str, list[str], list[str]] | None:
        canon = self.replica.canonical_id(track_id) or track_id
        doc = self.replica.track_doc(canon)
        if doc is None:
            return None
        return canon, list(doc.get("artist_ids") or []), list(doc.get("genres") or [])

    def feed(self, events: Iterable[dict]) -> None:
        for e in events:
            uid = e["user_id"]
            if uid in self.replica.erased:
                continue
            before = self.states.get(uid)
            after, reason = taste_view.evolve(before, e, self.info)
            assert reason is None, reason
            if after is not before and after is not None:
                self.states[uid] = after
                self.replica.apply("taste", uid, taste_view.to_view(after))


def popularity_doc(track_id: str, by_country: dict[str, int]) -> dict:
    """A ``view.popularity`` document as the batch job publishes it."""
    return {"track_id": track_id, "streams": sum(by_country.values()), "by_country": dict(by_country), "as_of": 0}


class BatchFeatures:
    """What ``playlog batch recs`` publishes, computed from the plays a test fed: ``view.popularity``
    (streams of 30 s or more per country, by canonical track) and ``view.similar`` (item-item cosine over
    the listeners' streamed tracks, the batch job's exact Python twin :mod:`processors.recs.similarity`)."""

    def __init__(self, replica: Any) -> None:
        self.replica = replica
        self.streams: dict[str, set[str]] = {}  # play id -> stream counted (one per play)
        self.by_country: dict[str, dict[str, int]] = {}
        self.listened: dict[str, set[str]] = {}

    def feed(self, events: Iterable[dict]) -> None:
        from processors.recs.similarity import item_item
        from processors.rules import MIN_STREAM_MS

        changed = False
        for e in events:
            if (e.get("ms_played") or 0) < MIN_STREAM_MS or e["play_id"] in self.streams:
                continue
            canon = self.replica.canonical_id(e["track_id"]) or e["track_id"]
            self.streams[e["play_id"]] = {canon}
            per = self.by_country.setdefault(canon, {})
            per[e["country"]] = per.get(e["country"], 0) + 1
            self.listened.setdefault(e["user_id"], set()).add(canon)
            changed = True
        if not changed:
            return
        for track, per in self.by_country.items():
            self.replica.apply("popularity", track, popularity_doc(track, per))
        for track, neighbours in item_item(self.listened).items():
            self.replica.apply("similar", track, {"track_id": track, "neighbours": [list(n) for n in neighbours],
                                                  "as_of": 0})
