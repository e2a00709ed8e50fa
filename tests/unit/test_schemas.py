"""Schemas match spec/events.md; JSON -> Avro -> JSON round-trips; the compatibility check bites."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from hypothesis import given, settings

from schemas.codec import EventError, default_codec
from schemas.registry import Registry, check, load_avsc_dir, register
from tests.support.events import any_event, event_strategy

SPEC = Path(__file__).resolve().parents[3] / "shared" / "spec" / "events.md"
EXTENSIONS = Path(__file__).resolve().parents[2] / "schemas" / "EVENTS.md"  # the types this project adds
codec = default_codec()


def spec_events() -> dict[str, list[str]]:
    """event type -> field names, parsed from the bullet lists of events.md and schemas/EVENTS.md."""
    text = SPEC.read_text() + "\n" + EXTENSIONS.read_text()
    bullets: list[str] = []
    for line in text.splitlines():
        if line.startswith("- `"):
            bullets.append(line)
        elif line.startswith("  ") and bullets:
            bullets[-1] += " " + line.strip()
        else:
            bullets.append("")
    out = {}
    for b in bullets:
        m = re.match(r"- `([a-z_]+\.[a-z_]+)`: (.*)", b)
        if not m:
            continue
        body = m.group(2)
        body = re.sub(r"\([^()]*\)", "", body)
        while re.search(r"\[[^\[\]]*\]|\{[^{}]*\}", body):
            body = re.sub(r"\[[^\[\]]*\]|\{[^{}]*\}", "", body)
        body = body.split(".")[0]
        out[m.group(1)] = [re.match(r"\s*(\w+)", p).group(1) for p in body.split(",") if p.strip()]
    return out


def test_spec_parser_sees_the_catalog() -> None:
    events = spec_events()
    assert len(events) == 39  # 29 + playlist.deleted, library.*, app_password.* (the Subsonic API), player.shuffle_set|repeat_set, follows + private session
    assert events["track.ingested"][-1] == "rightsholders"
    assert events["rights.changed"] == ["track_id", "territory", "allowed", "valid_from", "valid_to"]


@pytest.mark.parametrize("event_type", sorted(spec_events()))
def test_every_event_type_has_a_schema_with_exactly_the_spec_fields(event_type: str) -> None:
    assert event_type in codec.registry
    schema = codec.registry.latest(event_type).schema
    names = [f["name"] for f in schema["fields"]]
    assert names[:2] == ["event_id", "occurred_at"]
    assert schema["fields"][1]["type"] == {"type": "long", "logicalType": "timestamp-millis"}
    spec = spec_events()[event_type]
    assert names[2:2 + len(spec)] == spec
    for extra in schema["fields"][2 + len(spec):]:  # "more optional fields may be added" (events.md)
        assert extra.get("default", "none") is None and "null" in extra["type"], extra


def test_no_schema_without_a_spec_entry() -> None:
    assert set(codec.event_types) == set(spec_events())


@settings(max_examples=300)
@given(any_event())
def test_json_avro_json_round_trip(obj: dict) -> None:
    event = codec.from_json(obj)
    wire = codec.encode(event)
    assert wire[0] == 0 and int.from_bytes(wire[1:5], "big") == codec.registry.latest(obj["type"]).id
    back = codec.decode(wire)
    assert back == event
    assert codec.to_json(back) == codec.to_json(event)
    assert codec.from_json(codec.to_json(back)) == event


@pytest.mark.parametrize("event_type", sorted(spec_events()))
@settings(max_examples=15)
@given(data=__import__("hypothesis").strategies.data())
def test_round_trip_each_type(event_type: str, data) -> None:
    obj = data.draw(event_strategy(event_type))
    assert codec.decode(codec.encode(codec.from_json(obj))) == codec.from_json(obj)


def test_timestamps_keep_milliseconds() -> None:
    ev = codec.from_json({"type": "player.resumed", "event_id": "e", "occurred_at": "2026-05-19T12:00:00.123Z",
                          "user_id": "u", "device_id": "d"})
    assert ev["occurred_at"] == 1779192000123
    assert codec.to_json(codec.decode(codec.encode(ev)))["occurred_at"] == "2026-05-19T12:00:00.123Z"


GOOD_PLAY = {"type": "play.progress", "event_id": "e1", "occurred_at": "2026-05-01T00:00:00Z", "play_id": "p",
             "user_id": "u", "track_id": "t", "ms_played": 5, "country": "DE", "product": "free", "context_uri": None}
GOOD_TRACK = {"type": "track.ingested", "event_id": "e2", "occurred_at": "2026-05-01T00:00:00Z", "track_id": "t",
              "isrc": "X", "title": "T", "album_id": "a", "artist_ids": ["ar"], "duration_ms": 1000, "genres": [],
              "explicit": False, "distributor": "d",
              "rightsholders": [{"rightsholder_id": "r1", "share_ppm": 600000}, {"rightsholder_id": "r2", "share_ppm": 400000}]}


@pytest.mark.parametrize(("patch", "reason"), [
    ({"type": "play.paused2"}, "unknown event type"),
    ({"ms_played": -1}, "ms_played is negative"),
    ({"ms_played": "5"}, "must be an integer"),
    ({"ms_played": True}, "must be an integer"),
    ({"ms_played": 2**31}, "out of range"),
    ({"product": "family"}, "unknown product"),
    ({"country": "Germany"}, "not an ISO 3166-1"),
    ({"occurred_at": "yesterday"}, "not an RFC 3339"),
    ({"occurred_at": "2026-05-01T00:00:00"}, "no UTC offset"),
    ({"context_uri": 3}, "must be a string"),
    ({"extra": 1}, "unknown field"),
    ({"event_id": ""}, "event_id is empty"),
])
def test_bad_listening_events_are_rejected_with_a_reason(patch: dict, reason: str) -> None:
    with pytest.raises(EventError, match=reason):
        codec.from_json({**GOOD_PLAY, **patch})


def test_missing_field_is_named() -> None:
    obj = dict(GOOD_PLAY)
    del obj["user_id"]
    with pytest.raises(EventError, match="missing field 'user_id'"):
        codec.from_json(obj)


@pytest.mark.parametrize(("shares", "reason"), [
    ([{"rightsholder_id": "r1", "share_ppm": 600000}], "sum to 600000"),
    ([{"rightsholder_id": "r1", "share_ppm": 500000}, {"rightsholder_id": "r1", "share_ppm": 500000}], "listed twice"),
    ([{"rightsholder_id": "r1", "share_ppm": 1200000}, {"rightsholder_id": "r2", "share_ppm": -200000}], "negative"),
    ([], "empty"),
])
def test_share_invariants(shares: list, reason: str) -> None:
    with pytest.raises(EventError, match=reason):
        codec.from_json({**GOOD_TRACK, "rightsholders": shares})
    assert codec.from_json(GOOD_TRACK)["rightsholders"][1]["share_ppm"] == 400000


@pytest.mark.parametrize("data", [b"", b"\x00\x00", b"\x01\x00\x00\x00\x01abc", b"\x00\x00\x00\x99\x99abc",
                                  b"\x00\x00\x00\x00\x0e\xff\xff\xff\xff\xff\xff"])
def test_garbage_bytes_do_not_decode(data: bytes) -> None:
    with pytest.raises(EventError):
        codec.decode(data)


# -- compatibility ---------------------------------------------------------------------------------

def _working_with(event_type: str, change) -> dict:
    working = load_avsc_dir()
    schema = copy.deepcopy(working[event_type])
    change(schema)
    working[event_type] = schema
    return working


def test_shipped_schemas_match_the_registry() -> None:
    assert check(Registry.load(), load_avsc_dir()) == []


def test_new_field_without_default_is_a_break() -> None:
    working = _working_with("play.started", lambda s: s["fields"].append({"name": "bitrate", "type": "int"}))
    problems = check(Registry.load(), working)
    assert problems and all(p.startswith("play.started") for p in problems)
    assert any("bitrate" in p for p in problems)


def test_new_optional_field_with_default_is_accepted_and_old_data_upcasts() -> None:
    reg = Registry.load()
    working = _working_with("play.started",
                            lambda s: s["fields"].append({"name": "bitrate", "type": ["null", "int"], "default": None}))
    assert check(reg, working) == []
    new_reg, added = register(reg, working)
    assert [v.event_type for v in added] == ["play.started"]
    assert added[0].id == max(v.id for v in reg.versions) + 1
    assert added[0].version == reg.latest("play.started").version + 1
    old_codec, new_codec = default_codec(), type(codec)(new_reg)
    obj = {"type": "play.started", "event_id": "e", "occurred_at": "2026-05-01T00:00:00Z", "play_id": "p",
           "user_id": "u", "track_id": "t", "device_id": "d", "context_uri": None, "country": "DE",
           "product": "free", "offline": False}
    old_bytes = old_codec.encode(old_codec.from_json(obj))
    assert new_codec.decode(old_bytes)["bitrate"] is None  # old data read by the new schema


@pytest.mark.parametrize("change", [
    lambda s: s["fields"].__setitem__(2, {"name": "play_id", "type": "long"}),  # type change
    lambda s: s["fields"].pop(3),  # removed field without default: old readers break
    lambda s: s.__setitem__("name", "PlayBegan"),  # record name carries the type
])
def test_breaking_changes_are_caught(change) -> None:
    assert check(Registry.load(), _working_with("play.started", change))


def test_removed_event_type_is_a_break() -> None:
    working = load_avsc_dir()
    del working["player.resumed"]
    assert any("removed" in p for p in check(Registry.load(), working))
