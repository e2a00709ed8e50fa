"""worker/checkpoint.py without a broker: a checkpoint's records, the choice among what the
compacted topic holds (torn writes, a zombie writer, corrupt payloads), and the restored view."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

from processors import batches
from schemas.codec import default_codec
from worker import checkpoint

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
codec = default_codec()
EXPECTED = {p: (FIXTURES / f"royalties-sample-{p}.csv").read_text() for p in ("2026-04", "2026-05")}


def _view() -> batches.RoyaltyView:
    events = [codec.from_json(json.loads(x)) for x in (FIXTURES / "royalties-sample.jsonl").read_text().splitlines()]
    view = batches.RoyaltyView()
    facts = [batches.fact_of_summary(s) for s in batches.play_summaries(e for e in events if e["type"].startswith("play."))]
    facts += [batches.fact_of_event(codec, e) for e in events if e["type"] in batches.ROYALTY_EVENT_TYPES]
    view.apply_batch([(k.encode(), raw, None) for k, raw in facts])
    return view


VIEW = _view()


def test_a_checkpoint_round_trips_to_the_same_statements() -> None:
    recs = checkpoint.records_of(VIEW.to_snapshot(), slot="A", through=42, facts=VIEW.facts)
    assert recs[-1][0] == b"manifest:A" and all(k.startswith(b"A:") for k, _ in recs[:-1])
    assert all(len(v) < 1_000_000 for _, v in recs)  # under the broker's default message size
    view, m = checkpoint.restore(recs)
    assert (m.slot, m.through, m.chunks) == ("A", 42, len(recs) - 1)
    for period, text in EXPECTED.items():
        assert view.statement_csv(period) == text


def test_big_snapshots_are_cut_into_chunks(monkeypatch) -> None:
    monkeypatch.setattr(checkpoint, "CHUNK_BYTES", 1000)
    recs = checkpoint.records_of(VIEW.to_snapshot(), slot="B", through=7, facts=VIEW.facts)
    assert len(recs) > 5
    view, m = checkpoint.restore(recs)
    assert m.chunks == len(recs) - 1 and view.statement_csv("2026-05") == EXPECTED["2026-05"]


def test_the_newest_whole_checkpoint_wins_and_a_torn_one_falls_back(monkeypatch) -> None:
    monkeypatch.setattr(checkpoint, "CHUNK_BYTES", 2000)
    old_view = batches.RoyaltyView()  # an older, emptier checkpoint in slot A
    a = checkpoint.records_of(old_view.to_snapshot(), slot="A", through=5, facts=0, now=1.0)
    b = checkpoint.records_of(VIEW.to_snapshot(), slot="B", through=90, facts=VIEW.facts, now=2.0)
    assert checkpoint.restore(a + b)[1].slot == "B"
    # the writer died half-way through a newer B (its manifest never written, some chunks replaced):
    # B's manifest still names the old id, whose chunk 1 is gone -> B is incomplete, A is used
    torn = checkpoint.records_of(VIEW.to_snapshot(), slot="B", through=120, facts=VIEW.facts, now=3.0)[:2]
    view, m = checkpoint.restore(a + b + torn)
    assert m.slot == "A" and m.through == 5 and view.facts == 0
    # a zombie owner's older checkpoint written after a newer one: the larger `through` wins
    zombie = checkpoint.records_of(old_view.to_snapshot(), slot="A", through=60, facts=0, now=9.0)
    assert checkpoint.restore(b + zombie)[1].slot == "B"


def test_a_payload_that_does_not_decode_falls_back_and_nothing_gives_none() -> None:
    good = checkpoint.records_of(VIEW.to_snapshot(), slot="A", through=3, facts=VIEW.facts, now=1.0)
    bad = checkpoint.records_of(b"not a snapshot", slot="B", through=10, facts=1, now=2.0)
    assert checkpoint.restore(good + bad)[1].slot == "A"
    garbage = [(b"manifest:A", b"{not json"), (b"A:0", b"x")]
    assert checkpoint.restore(garbage) is None
    assert checkpoint.restore([]) is None
    not_zlib = [(b"A:0", b"id1\nnot zlib"), (b"manifest:A", checkpoint.Manifest("id1", "A", 1, 1, 1, 1.0).to_json())]
    assert checkpoint.restore(not_zlib) is None
    assert zlib.decompress(zlib.compress(b"x"))  # (zlib is what the chunks hold)


def test_slots_alternate() -> None:
    m = checkpoint.Manifest("x", "A", 1, 1, 1, 1.0)
    assert checkpoint.next_slot(None) == "A" and checkpoint.next_slot(m) == "B"
    assert checkpoint.next_slot(checkpoint.Manifest("y", "B", 1, 1, 1, 1.0)) == "A"
