"""Every record accounted for (the "Trust" issue, item 7): a valid event on a topic it does not belong
on, and trailing bytes after a valid Avro body, are refused with one reason by every reader.

The live path (``processors.batches.decode_batch``, which the Faust agents and the plays stage run),
the sink runner and the replay sources (Kafka, the Parquet archive) all call the one validation step
in schemas/validate.py, so they give the same reason; before, the live view ignored a
``rights.changed`` produced to ``listening`` while the replay counted it.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from core.settings import load
from processors import batches
from processors.rules import ROYALTY_TYPES
from replay.sources import SourceReport, iter_archive, iter_kafka
from schemas.codec import EventError, default_codec
from schemas.validate import check_event, decode_record
from sinks import runner
from sinks.archive_schema import file_path, records_to_table
from topics.consumer import Record
from topics.topic_catalog import topic_spec

codec = default_codec()
T = 1_778_000_000_000  # 2026-05-05
RIGHTS = {"type": "rights.changed", "event_id": "rc-wrong", "occurred_at": T, "track_id": "t1", "territory": "SE",
          "allowed": False, "valid_from": None, "valid_to": None}
USER = {"type": "user.registered", "event_id": "ur-wrong", "occurred_at": T, "user_id": "u1", "country": "SE",
        "product": "free", "display_name": "Ann"}
# as decoded: with every field of the latest schema (optional ones as their default)
PLAY = codec.from_json(codec.to_json({
    "type": "play.progress", "event_id": "pp-1", "occurred_at": T, "play_id": "p1", "user_id": "u1",
    "track_id": "t1", "ms_played": 40_000, "country": "SE", "product": "free", "context_uri": None}))
PREFIX = load().topic_prefix


def live_reason(topic: str, value: bytes, **kw) -> str:  # noqa: ANN003
    good, dead = batches.decode_batch(codec, [batches.RawRecord(topic, 3, 17, value)], **kw)
    assert good == [] and len(dead) == 1, (good, dead)
    return dead[0].reason


def sink_reason(topic: str, value: bytes) -> str:
    good, bad = runner.decode_batch([Record(PREFIX + topic, 3, 17, None, value, 0)], codec, PREFIX)
    assert good == [] and len(bad) == 1, (good, bad)
    return bad[0][1]


def kafka_reasons(monkeypatch: pytest.MonkeyPatch, topic: str, values: list[bytes],
                  types: frozenset[str] = ROYALTY_TYPES) -> tuple[list[dict], list[tuple[str, str]]]:
    settings = load()
    full = settings.topic_prefix + topic
    records = [Record(full, 3, i, None, v, 0) for i, v in enumerate(values)]
    monkeypatch.setattr("topics.consumer.iter_records", lambda *a, **k: iter(records))
    report = SourceReport()
    got = list(iter_kafka(settings, report, types, progress=False))
    return got, [(b.where, b.reason) for b in report.bad]


def test_a_wrong_topic_event_is_dead_lettered_by_the_live_path() -> None:
    reason = live_reason(PREFIX + "listening", codec.encode(RIGHTS))
    assert reason.startswith("rights.changed: ") and "does not belong on topic 'listening'" in reason
    assert live_reason(PREFIX + "listening", codec.encode(RIGHTS), prefix=PREFIX) == reason
    assert live_reason("other-prefix.listening", codec.encode(RIGHTS)) == reason  # the prefix is passed over
    good, dead = batches.decode_batch(codec, [batches.RawRecord(PREFIX + "rights", 0, 0, codec.encode(RIGHTS))])
    assert dead == [] and [ev for _, ev in good] == [RIGHTS]  # on its own topic it is fine


def test_live_sinks_and_replay_give_the_same_wrong_topic_reason(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    for event, topic in ((RIGHTS, "listening"), (USER, "listening"), (PLAY, "rights")):
        wire = codec.encode(event)
        reason = live_reason(PREFIX + topic, wire)
        assert "does not belong on topic" in reason
        assert sink_reason(topic, wire) == reason
        got, bad = kafka_reasons(monkeypatch, topic, [wire])
        assert got == [] and bad == [(f"{PREFIX}{topic}[3]@0", reason)], (event["type"], bad)
        with pytest.raises(EventError) as info:
            decode_record(codec, wire, topic=topic, allowed=topic_spec(topic).event_types)
        assert info.value.reason == reason
        with pytest.raises(EventError) as info:
            check_event(dict(event), topic=topic, allowed=topic_spec(topic).event_types)
        assert info.value.reason == reason
        # the archive holds the topic with each row: a row of the wrong topic is listed alike
        root = tmp_path / topic / event["type"]
        path = file_path(root, topic, "2026-05-05", 3, 0, 0)
        path.parent.mkdir(parents=True)
        pq.write_table(records_to_table([(topic, 3, 0, "k", event)]), path)
        report = SourceReport()
        assert list(iter_archive(root, report, ROYALTY_TYPES, progress=False)) == []
        assert [b.reason for b in report.bad] == [reason] and "row 0" in report.bad[0].where


def test_replay_from_kafka_does_not_count_a_wrong_topic_event(monkeypatch: pytest.MonkeyPatch) -> None:
    got, bad = kafka_reasons(monkeypatch, "listening", [codec.encode(PLAY), codec.encode(RIGHTS)])
    assert got == [PLAY]
    assert len(bad) == 1 and "does not belong on topic 'listening'" in bad[0][1]
    # an event the caller does not want, on its own topic, is still only passed over
    report_got, report_bad = kafka_reasons(monkeypatch, "listening", [codec.encode(PLAY)],
                                           types=frozenset({"play.started"}))
    assert report_got == [] and report_bad == []


def test_live_sinks_and_replay_give_the_same_trailing_bytes_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    wire = codec.encode(PLAY) + b"\x00\x00"
    reason = live_reason(PREFIX + "listening", wire)
    assert reason == "play.progress: 2 trailing bytes after the Avro body"
    assert sink_reason("listening", wire) == reason
    got, bad = kafka_reasons(monkeypatch, "listening", [codec.encode(PLAY), wire])
    assert got == [PLAY] and bad == [(f"{PREFIX}listening[3]@1", reason)]
    with pytest.raises(EventError) as info:
        decode_record(codec, wire)
    assert info.value.reason == reason
