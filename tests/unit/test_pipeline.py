"""The live pipeline's batch steps without a broker: the same path the Faust agents take.

Records go through what worker/app.py and worker/plays_stage.py run: ``decode_batch`` on wire-format
records, ``play_summaries`` / ``fact_of_event``, ``pack_facts`` into ``royalty.inputs`` records,
``unpack_facts`` + ``RoyaltyView.apply_batch`` in the royalty agent (whose stored facts rebuild the
view after a restart).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from core.timefmt import period_of
from processors import batches, views
from processors.batches import RawRecord
from processors.rules import PLAY_TYPES
from schemas.codec import default_codec
from topics.topic_catalog import topic_of

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
codec = default_codec()
EVENTS = [codec.from_json(json.loads(x)) for x in (FIXTURES / "royalties-sample.jsonl").read_text().splitlines()]
EXPECTED = {p: (FIXTURES / f"royalties-sample-{p}.csv").read_text() for p in ("2026-04", "2026-05")}


def _raw_records(events: list[dict], first_offset: int = 0) -> dict[str, list[RawRecord]]:
    """The events as the wire-format records of their topics (what the agents consume), per topic."""
    out: dict[str, list[RawRecord]] = {}
    for i, e in enumerate(events, start=first_offset):
        topic = topic_of(e["type"])
        out.setdefault(topic, []).append(RawRecord(topic, 0, i, codec.encode(e)))
    return out


def _producer_steps(records: dict[str, list[RawRecord]]) -> list[bytes]:
    """The steps of the agents feeding ``royalty.inputs``, as worker/app.py and worker/plays_stage.py
    run them: decode_batch, then play_summaries -> fact_of_summary (listening) or fact_of_event (catalog,
    rights, finance), packed with pack_facts. Returns the packed ``royalty.inputs`` records."""
    packed: list[bytes] = []
    for topic, recs in records.items():
        good, dead = batches.decode_batch(codec, recs)
        assert dead == []
        if topic == "listening":
            facts = [batches.fact_of_summary(s) for s in batches.play_summaries(ev for _, ev in good)]
        else:
            facts = [batches.fact_of_event(codec, ev) for _, ev in good if ev["type"] in batches.ROYALTY_EVENT_TYPES]
        records_out = batches.pack_facts(facts, per_record=97)
        assert len(records_out) == -(-len(facts) // 97)
        packed += records_out
    return packed


def _royalty_step(view: batches.RoyaltyView, table: dict[bytes, bytes], packed: list[bytes]) -> None:
    """The ``royalty`` agent's step: unpack_facts -> RoyaltyView.apply_batch -> one table write per key."""
    items = [(k, raw, ("royalty.inputs", n)) for n, rec in enumerate(packed) for k, raw in batches.unpack_facts(rec)]
    store, bad = view.apply_batch(items)
    assert bad == []
    for key, (raw, _source) in store.items():
        table[key] = raw


def _live(events: list[dict], cuts: list[int], table: dict[bytes, bytes] | None = None) -> batches.RoyaltyView:
    """Feed events in batches through the agents' steps; ``table`` collects what the step would store per key."""
    view = batches.RoyaltyView()
    table = {} if table is None else table
    bounds = [0, *sorted(cuts), len(events)]
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        _royalty_step(view, table, _producer_steps(_raw_records(events[lo:hi], lo)))
    return view


def _rebuilt(table: dict[bytes, bytes]) -> batches.RoyaltyView:
    """The view a restarted worker rebuilds from the recovered table (worker/app.py rebuild_after_recovery)."""
    view = batches.RoyaltyView()
    for raw in table.values():
        view.apply(batches.parse_fact(raw))
    return view


def test_live_path_reproduces_the_fixture_statements() -> None:
    view = _live(EVENTS, [1000, 2500, 5000])
    for period, text in EXPECTED.items():
        assert view.statement_csv(period) == text


def test_view_rebuilt_from_the_table_equals_the_live_one() -> None:
    table: dict[bytes, bytes] = {}
    view = _live(EVENTS, [700, 3000], table)
    # one stored fact per play (the merged summary) and per catalog/rights/pool event
    n_plays = len({e["play_id"] for e in EVENTS if e["type"] in PLAY_TYPES})
    n_events = len({e["event_id"] for e in EVENTS if e["type"] in batches.ROYALTY_EVENT_TYPES})
    assert len(table) == n_plays + n_events
    rebuilt = _rebuilt(table)
    for period, text in EXPECTED.items():
        assert rebuilt.statement_csv(period) == view.statement_csv(period) == text


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cuts=st.lists(st.integers(0, len(EVENTS)), max_size=12),
       dup=st.integers(0, 800))
def test_any_batching_order_and_redelivery_gives_the_same_statement(seed: int, cuts: list[int], dup: int) -> None:
    rng = random.Random(seed)
    events = EVENTS + rng.sample(EVENTS, dup)  # at-least-once: redelivered events
    rng.shuffle(events)
    table: dict[bytes, bytes] = {}
    view = _live(events, cuts, table)
    rebuilt = _rebuilt(table)
    for period in ("2026-04", "2026-05"):
        assert view.statement_csv(period) == rebuilt.statement_csv(period) == EXPECTED[period]


def test_live_path_equals_the_replay_fold() -> None:
    from processors import royalties

    view = _live(EVENTS, [1234])
    replayed = royalties.fold(EVENTS)
    assert view.state.plays == replayed.plays
    for period in EXPECTED:
        assert view.statement(period) == royalties.statement(replayed, period)


def test_decode_batch_sorts_good_from_dead() -> None:
    good_ev = EVENTS[0]
    bad_shares = dict(next(e for e in EVENTS if e["type"] == "track.ingested"))
    bad_shares["rightsholders"] = [{"rightsholder_id": "r", "share_ppm": 5}]
    recs = [
        RawRecord("t", 0, 0, codec.encode(good_ev)),
        RawRecord("t", 0, 1, b"\x00\x00\x00\x00\x07junk"),
        RawRecord("t", 1, 5, codec.encode(bad_shares)),  # type-correct, breaks an invariant
        RawRecord("t", 1, 6, None),
    ]
    good, dead = batches.decode_batch(codec, recs)
    assert [g[1] for g in good] == [good_ev]
    assert [(d.record.partition, d.record.offset) for d in dead] == [(0, 1), (1, 5), (1, 6)]
    assert "sum to 5" in dead[1].reason


def test_bad_royalty_fact_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError):
        batches.parse_fact(b'{"kind": "mystery"}')
    for raw in (b"not json", b'{"a": 1}', b'[["k"]]', b"[[1, {}]]"):
        with pytest.raises(ValueError):
            batches.unpack_facts(raw)
    view = batches.RoyaltyView()
    store, bad = view.apply_batch([(b"p:x", b'{"kind": "play"}', "src")])
    assert store == {} and bad and bad[0][0] == "src"


def _ev(obj: dict) -> dict:
    return codec.from_json(obj)


def test_view_batches_publish_last_doc_per_key_and_dead_letter_refusals() -> None:
    spec = next(v for v in views.VIEWS if v.name == "playlists")
    store: dict[str, bytes] = {}
    base = {"occurred_at": "2026-05-01T00:00:00Z", "playlist_id": "pl"}
    items = [
        ("s1", _ev({**base, "type": "playlist.created", "event_id": "a", "owner_id": "u1", "name": "N",
                    "collaborative": False, "public": True})),
        ("s2", _ev({**base, "type": "playlist.tracks_added", "event_id": "b", "user_id": "u1",
                    "track_ids": ["x", "y"], "position": None})),
        ("s3", _ev({**base, "type": "playlist.tracks_added", "event_id": "c", "user_id": "intruder",
                    "track_ids": ["z"], "position": None})),
        ("s2", _ev({**base, "type": "playlist.tracks_added", "event_id": "b", "user_id": "u1",
                    "track_ids": ["x", "y"], "position": None})),  # redelivered
    ]
    published, dead = views.apply_batch(spec, store, items)
    assert list(published) == ["pl"]
    source, doc = published["pl"]
    assert source in ("s2", "s3") and [t["track_id"] for t in doc["tracks"]] == ["x", "y"]
    assert [s for s, _ in dead] == ["s3"]
    # the stored state continues the fold in the next batch
    more = [("s4", _ev({**base, "type": "playlist.tracks_removed", "event_id": "d", "user_id": "u1", "track_ids": ["x"]}))]
    published, dead = views.apply_batch(spec, store, more)
    assert [t["track_id"] for t in published["pl"][1]["tracks"]] == ["y"] and not dead


def test_catalog_view_carries_first_ingest_for_replicas() -> None:
    spec = next(v for v in views.VIEWS if v.name == "catalog")
    tracks = [e for e in EVENTS if e["type"] == "track.ingested"]
    published, _ = views.apply_batch(spec, {}, [(i, e) for i, e in enumerate(tracks)])
    doc = published["track:" + tracks[0]["track_id"]][1]
    assert doc["first"]["isrc"] and doc["first"]["event_id"]


def test_streams_records_follow_late_events_with_tombstones() -> None:
    from processors import royalties

    view = _live(EVENTS, [3000])
    assert set(view.take_dirty()) >= {"2026-04", "2026-05"}
    first = dict(view.stream_changes("2026-05"))
    expected = {pid for pid, *_ in royalties.streams_of(royalties.fold(EVENTS), "2026-05")}
    assert set(first) == expected and all(v is not None for v in first.values())
    assert view.stream_changes("2026-05") == sorted(first.items(), key=lambda kv: list(first).index(kv[0]))
    # a late takedown everywhere of one streamed track: its plays become tombstones
    rec = json.loads(first[next(iter(first))])
    canon = rec["canonical_track_id"]
    late = {"type": "track.taken_down", "event_id": "late-td", "occurred_at": 0, "track_id": canon,
            "territories": ["*"], "reason": "test"}
    view.apply({"kind": "event", "event": late})
    assert "2026-05" in view.take_dirty()
    changes = dict(view.stream_changes("2026-05"))
    gone = {pid for pid, raw in changes.items() if raw is None}
    assert gone and all(json.loads(first[pid])["canonical_track_id"] == canon for pid in gone)
    assert not any(json.loads(raw)["canonical_track_id"] == canon for raw in changes.values() if raw)


def _inputs_log(events: list[dict], cuts: list[int]) -> list[bytes]:
    """The ``royalty.inputs`` records the producing agents write for ``events`` cut into batches."""
    bounds = [0, *sorted(cuts), len(events)]
    log: list[bytes] = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        log += _producer_steps(_raw_records(events[lo:hi], lo))
    return log


def _apply_records(view: batches.RoyaltyView, records: list[bytes]) -> None:
    for rec in records:
        _royalty_step(view, {}, [rec])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), at=st.floats(0, 1), back=st.integers(0, 40))
def test_a_view_restored_from_a_checkpoint_and_its_tail_equals_the_fixture(seed: int, at: float, back: int) -> None:
    """Recovery (worker/checkpoint.py): the snapshot taken after record k, then the tail of the log
    read again from some record j <= k (the group's commit can trail the checkpoint: redelivery)."""
    rng = random.Random(seed)
    events = EVENTS + rng.sample(EVENTS, 300)
    rng.shuffle(events)
    log = _inputs_log(events, sorted(rng.sample(range(len(events)), 6)))
    k = int(at * len(log))
    before = batches.RoyaltyView()
    _apply_records(before, log[:k])
    for period in before.take_dirty():  # what the live worker had published before the checkpoint
        before.stream_changes(period)
    restored = batches.RoyaltyView.from_snapshot(before.to_snapshot())
    assert restored.facts == before.facts and restored.published == before.published
    _apply_records(restored, log[max(0, k - back):])
    for period, text in EXPECTED.items():
        assert restored.statement_csv(period) == text
    # the streams it publishes after the restore: the fixture's, with tombstones for any published
    # play that is no longer a stream (the restored `published` sets make those possible)
    final = batches.RoyaltyView()
    _apply_records(final, log)
    for period in ("2026-04", "2026-05"):
        want = {pid for pid, raw in final.stream_changes(period) if raw is not None}
        got = dict(restored.stream_changes(period))
        assert {pid for pid, raw in got.items() if raw is not None} == want
        assert {pid for pid, raw in got.items() if raw is None} == before.published.get(period, set()) - want


def test_a_snapshot_that_is_not_one_is_refused() -> None:
    import pytest

    for raw in (b"", b"[]", b'{"version": 2}', b'{"version": 1, "facts": 1}', b"\x00\x01"):
        with pytest.raises(ValueError):
            batches.RoyaltyView.from_snapshot(raw)


def _state_of(view: batches.RoyaltyView) -> tuple:
    s = view.state
    return (s.plays, s.by_period, s.catalog, s.ingests, s.rights, s.takedowns, s.pools, view.facts,
            view.published, view.reported)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), stops=st.lists(st.floats(0, 1), min_size=1, max_size=6),
       per_segment=st.sampled_from([1, 7, 20_000]), publish=st.booleans())
def test_incremental_snapshots_equal_a_snapshot_of_the_whole_view(seed: int, stops: list[float],
                                                                  per_segment: int, publish: bool) -> None:
    """Checkpoints re-encode only the periods that changed (processors/snapshot.py): a view
    snapshotted at several points while it folds, then restored from its last snapshot, equals a
    view folded in one go (every play, table, published set and report), and so does the view
    restored from that one's single snapshot."""
    import pytest

    from processors import snapshot

    mp = pytest.MonkeyPatch()
    mp.setattr(snapshot, "SEGMENT_ITEMS", per_segment)
    try:
        rng = random.Random(seed)
        events = EVENTS + rng.sample(EVENTS, 200)
        rng.shuffle(events)
        log = _inputs_log(events, sorted(rng.sample(range(len(events)), 5)))
        live = batches.RoyaltyView()
        done = 0
        for stop in sorted(stops):
            k = int(stop * len(log))
            _apply_records(live, log[done:k])
            done = max(done, k)
            for period in live.take_dirty() if publish else ():
                live.stream_changes(period)
            live.to_snapshot()
        _apply_records(live, log[done:])
        for period in live.take_dirty():
            live.stream_changes(period)
        restored = batches.RoyaltyView.from_snapshot(live.to_snapshot())
        whole = batches.RoyaltyView()
        _apply_records(whole, log)
        for period in whole.take_dirty():
            whole.stream_changes(period)
        assert _state_of(restored) == _state_of(whole) == _state_of(live)
        assert _state_of(batches.RoyaltyView.from_snapshot(whole.to_snapshot())) == _state_of(whole)
        for period, text in EXPECTED.items():
            assert restored.statement_csv(period) == text
    finally:
        mp.undo()


def test_a_snapshot_re_encodes_only_the_periods_that_changed() -> None:
    view = batches.RoyaltyView()
    _apply_records(view, _inputs_log(EVENTS, []))
    for period in view.take_dirty():
        view.stream_changes(period)
    view.to_snapshot()
    before = dict(view.segments)
    late = next(e for e in EVENTS if e["type"] == "play.started")
    day = f"d:{late['occurred_at'] // 86_400_000}"
    again = dict(late, event_id="late-" + late["event_id"], play_id="late-play")
    _apply_records(view, _inputs_log([again], []))
    assert view.unsaved == {day}
    restored = batches.RoyaltyView.from_snapshot(view.to_snapshot())
    assert len(before) > 3 and day in before
    assert all(view.segments[k] is segs for k, segs in before.items() if k != day)
    assert view.segments[day] is not before[day]
    assert "late-play" in restored.state.plays and restored.state.plays.keys() == view.state.plays.keys()
    # a restored view starts with every period's segments: its first snapshot encodes none again
    segs = {p: list(s) for p, s in restored.segments.items()}
    restored.to_snapshot()
    assert {p: list(s) for p, s in restored.segments.items()} == segs


def test_checkpoints_of_the_previous_format_still_restore() -> None:
    view = batches.RoyaltyView()
    _apply_records(view, _inputs_log(EVENTS, []))
    for period in view.take_dirty():
        view.stream_changes(period)
    old = batches.RoyaltyView.from_snapshot(view.to_snapshot_v1())
    assert _state_of(old) == _state_of(view)
    # and its first format-2 snapshot encodes every period (none was cached)
    assert _state_of(batches.RoyaltyView.from_snapshot(old.to_snapshot())) == _state_of(view)


def test_a_cut_or_corrupt_format_2_snapshot_is_refused() -> None:
    import zlib

    import pytest

    from processors import snapshot

    view = batches.RoyaltyView()
    _apply_records(view, _inputs_log(EVENTS, []))
    raw = view.to_snapshot()
    bad = [raw[: len(raw) - 3], raw[: len(snapshot.MAGIC) + 2], snapshot.MAGIC,
           snapshot.MAGIC + (5).to_bytes(4, "big") + b"xxxxx",
           snapshot.MAGIC + (len(z := zlib.compress(b'{"version": 3}'))).to_bytes(4, "big") + z,
           snapshot.assemble(zlib.compress(b'{"version": 2, "facts": 1}'), {})]
    for b in bad:
        with pytest.raises(ValueError):
            batches.RoyaltyView.from_snapshot(b)


def test_a_fact_that_is_not_a_json_object_is_refused_not_a_crash() -> None:
    """A royalty.inputs record whose facts are JSON but not objects (a list, a number) is
    dead-lettered with a reason; it used to raise AttributeError out of the agent's step."""
    view = batches.RoyaltyView()
    items = [(b"p:x", b'["p", null, 0]', "src1"), (b"p:y", b"7", "src2")]
    store, bad = view.apply_batch(items)
    assert store == {} and [src for src, _ in bad] == ["src1", "src2"]
    assert all("JSON object" in reason for _, reason in bad)


def test_a_view_restored_from_an_acknowledged_checkpoint_publishes_only_what_changes() -> None:
    """A checkpoint written after a flush (worker/royalty.py) says its published streams were
    acknowledged: the restored view has nothing to publish until something changes; one written
    without that (or of format 1) publishes every period once again."""
    view = batches.RoyaltyView()
    _apply_records(view, _inputs_log(EVENTS, []))
    for period in view.take_dirty():
        view.stream_changes(period)
    acked = batches.RoyaltyView.from_snapshot(view.to_snapshot(published_acked=True))
    assert acked.take_dirty() == [] and acked.published == view.published
    every = view.periods()
    assert len(every) >= 2
    assert batches.RoyaltyView.from_snapshot(view.to_snapshot()).take_dirty() == every
    assert batches.RoyaltyView.from_snapshot(view.to_snapshot_v1()).take_dirty() == every
    late = next(e for e in EVENTS if e["type"] == "play.started")
    _apply_records(acked, _inputs_log([dict(late, event_id="late-1", play_id="late-play")], []))
    assert acked.take_dirty() == [period_of(late["occurred_at"])]
