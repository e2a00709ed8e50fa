"""One decode-and-validate step (schemas/validate.py): every reader refuses an event that breaks an
invariant, with the reason the live path dead-letters it with (processors.batches.decode_batch)."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from core.settings import load
from processors import batches
from replay.sources import SourceReport, iter_archive, iter_jsonl, iter_kafka
from schemas.codec import EventError, default_codec
from schemas.validate import check_event, decode_json, decode_record, parse_json_line
from sinks import archive_schema, runner
from topics.consumer import Record
from topics.deadletter import deadletter_record
from topics.topic_catalog import key_of, topic_of

codec = default_codec()
GOOD_TRACK = codec.from_json({
    "type": "track.ingested", "event_id": "ti-good", "occurred_at": "2026-04-01T00:00:00Z", "track_id": "t1",
    "isrc": "I1", "title": "T", "album_id": "al", "artist_ids": ["ar"], "duration_ms": 180_000, "genres": [],
    "explicit": False, "distributor": "d", "rightsholders": [{"rightsholder_id": "rhA", "share_ppm": 1_000_000}],
})  # fmt: skip
GOOD_PLAY = codec.from_json({
    "type": "play.progress", "event_id": "pp-good", "occurred_at": "2026-05-10T12:00:00Z", "play_id": "p1",
    "user_id": "u1", "track_id": "t1", "ms_played": 40_000, "country": "SE", "product": "free", "context_uri": None,
})  # fmt: skip
# type-correct (they encode), but each breaks an invariant of events.md "Bad input"
BAD = {
    "shares": {**GOOD_TRACK, "event_id": "ti-bad",
               "rightsholders": [{"rightsholder_id": "rhA", "share_ppm": 600_000},
                                 {"rightsholder_id": "rhB", "share_ppm": 300_000}]},
    "twice": {**GOOD_TRACK, "event_id": "ti-twice",
              "rightsholders": [{"rightsholder_id": "rhA", "share_ppm": 500_000},
                                {"rightsholder_id": "rhA", "share_ppm": 500_000}]},
    "negative_ms": {**GOOD_PLAY, "event_id": "pp-bad", "ms_played": -5},
    "product": {**GOOD_PLAY, "event_id": "pp-product", "product": "gold"},
}


def live_reason(event: dict) -> str:
    """The reason the live agents dead-letter the event with."""
    good, dead = batches.decode_batch(codec, [batches.RawRecord(topic_of(event["type"]), 0, 0, codec.encode(event))])
    assert good == [] and len(dead) == 1
    return dead[0].reason


def test_live_reasons_name_the_broken_invariant() -> None:
    assert live_reason(BAD["shares"]) == "track.ingested: rightsholder shares sum to 900000, not 1000000"
    assert live_reason(BAD["twice"]) == "track.ingested: rightsholder 'rhA' is listed twice"
    assert live_reason(BAD["negative_ms"]) == "play.progress: ms_played is negative (-5)"
    assert live_reason(BAD["product"]).startswith("play.progress: unknown product 'gold'")


@pytest.mark.parametrize("name", sorted(BAD))
def test_every_decode_function_gives_the_live_reason(name: str) -> None:
    event, reason = BAD[name], live_reason(BAD[name])
    for call in (lambda: decode_record(codec, codec.encode(event)), lambda: check_event(dict(event)),
                 lambda: decode_json(codec, codec.to_json(event))):
        with pytest.raises(EventError) as info:
            call()
        assert info.value.reason == reason
    good, bad = runner.decode_batch([Record(topic_of(event["type"]), 0, 3, None, codec.encode(event), 0)], codec, "")
    assert good == [] and [r for _, r in bad] == [reason]  # the sink runner dead-letters it alike


@pytest.mark.parametrize("name", sorted(BAD))
def test_kafka_source_lists_the_event_with_the_live_reason(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load()
    good = GOOD_TRACK if BAD[name]["type"] == "track.ingested" else GOOD_PLAY
    topic = settings.topic_prefix + topic_of(good["type"])
    records = [Record(topic, 0, 0, None, codec.encode(good), 0), Record(topic, 0, 1, None, codec.encode(BAD[name]), 0)]
    monkeypatch.setattr("topics.consumer.iter_records", lambda *a, **k: iter(records))
    report = SourceReport()
    got = list(iter_kafka(settings, report, frozenset({good["type"]}), progress=False))
    assert got == [good] and report.events == 1
    assert [(b.where, b.reason) for b in report.bad] == [(f"{topic}[0]@1", live_reason(BAD[name]))]


@pytest.mark.parametrize("name", sorted(BAD))
def test_archive_source_lists_the_event_with_the_live_reason(name: str, tmp_path) -> None:  # noqa: ANN001
    good = GOOD_TRACK if BAD[name]["type"] == "track.ingested" else GOOD_PLAY
    records = [(topic_of(e["type"]), 0, i, key_of(e), e) for i, e in enumerate([good, BAD[name]])]
    for (topic, partition, date), recs in archive_schema.group_by_file(records).items():
        path = archive_schema.file_path(tmp_path, topic, date, partition, recs[0][2], recs[-1][2])
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(archive_schema.records_to_table(recs), path)
    report = SourceReport()
    got = list(iter_archive(tmp_path, report, progress=False))
    assert got == [good] and report.events == 1
    assert [b.reason for b in report.bad] == [live_reason(BAD[name])] and "row 1" in report.bad[0].where


@pytest.mark.parametrize("name", sorted(BAD))
def test_jsonl_source_lists_the_event_with_the_live_reason(name: str, tmp_path) -> None:  # noqa: ANN001
    import orjson

    good = GOOD_TRACK if BAD[name]["type"] == "track.ingested" else GOOD_PLAY
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(codec.to_json(e)) + b"\n" for e in (good, BAD[name])))
    report = SourceReport()
    got = list(iter_jsonl(path, report, progress=False))
    assert got == [good] and report.events == 1
    assert [(b.where, b.reason) for b in report.bad] == [("line 2", live_reason(BAD[name]))]


def test_records_without_a_value_and_non_json_lines() -> None:
    with pytest.raises(EventError, match="record has no value"):
        decode_record(codec, None)
    good, dead = batches.decode_batch(codec, [batches.RawRecord("listening", 0, 4, None)])
    assert dead[0].reason == "record has no value"
    with pytest.raises(EventError, match="not valid JSON"):
        parse_json_line(b"{nope")


def test_one_dead_letter_shape() -> None:
    rec = batches.RawRecord("p.listening", 2, 17, b"\x00junk")
    key, value, headers = deadletter_record(rec, "unknown schema id 1")
    assert (key, value) == (b"p.listening", b"\x00junk")
    assert headers == [("reason", b"unknown schema id 1"), ("source.topic", b"p.listening"),
                       ("source.partition", b"2"), ("source.offset", b"17")]
    # the confluent-kafka writer (sinks, operators) sends exactly that record
    sent = []

    class FakeProducer:
        prefix = "p."

        def produce_raw(self, topic: str, value: bytes | None, key=None, headers=None) -> None:  # noqa: ANN001
            sent.append((topic, key, value, headers))

    from topics.kafka_io import dead_letter

    dead_letter(FakeProducer(), Record(rec.topic, rec.partition, rec.offset, None, rec.value, 0), "unknown schema id 1")
    assert sent == [("p.deadletter", key, value, headers)]


def test_replay_cli_lists_an_invariant_break_from_kafka_and_exits_3(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    from click.testing import CliRunner

    from replay.cli import replay_group
    from tests.unit.test_royalties import FIXTURES, load_fixture

    settings = load()
    events = load_fixture()
    records = [Record(settings.topic_prefix + topic_of(e["type"]), 0, i, None, codec.encode(e), 0)
               for i, e in enumerate(events)]
    catalog = settings.topic_prefix + "catalog"
    records.append(Record(catalog, 0, len(records), None, codec.encode(BAD["shares"]), 0))
    monkeypatch.setattr("topics.consumer.iter_records", lambda *a, **k: iter(records))
    out = tmp_path / "may.csv"
    result = CliRunner().invoke(replay_group, ["royalties", "--period", "2026-05", "--source", "kafka",
                                               "--out", str(out)])
    assert result.exit_code == 3, result.output
    bad = [line for line in result.stderr.splitlines() if line.startswith("bad input: ")]
    assert bad == [f"bad input: {catalog}[0]@{len(records) - 1}: {live_reason(BAD['shares'])}"]
    assert out.read_bytes() == (FIXTURES / "royalties-sample-2026-05.csv").read_bytes()
