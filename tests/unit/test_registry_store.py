"""The schema registry's store: subjects by TopicRecordNameStrategy, our ids, Confluent's id rules, and
compatibility by the very rule of ``playlog schemas check`` (the same cases refused)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from core.errors import PlaylogError
from registry.store import RegistryError, SchemaStore, parse_schema
from schemas.registry import Registry, check, load_avsc_dir
from topics.topic_catalog import topic_of

PREFIX = "playlog."


def _store(tmp_path: Path | None = None, empty: bool = False) -> SchemaStore:
    return SchemaStore.open(Registry.load(), PREFIX, tmp_path / "store.json" if tmp_path else None, empty=empty)


def _subject(event_type: str) -> str:
    return f"{PREFIX}{topic_of(event_type)}-{Registry.load().latest(event_type).fullname}"


def test_every_event_type_is_a_subject_with_its_ids() -> None:
    reg, store = Registry.load(), _store()
    assert _subject("play.started") == "playlog.listening-playlog.events.PlayStarted"
    assert len(store.subjects()) == len(reg.event_types)
    for t in reg.event_types:
        latest = store.version(_subject(t), "latest")
        assert latest.id == reg.latest(t).id and latest.schema == reg.latest(t).schema
        assert [e.id for e in store.versions(_subject(t))] == [v.id for v in sorted(
            (v for v in reg.versions if v.event_type == t), key=lambda v: v.version)]
    for v in reg.versions:
        assert store.by_id(v.id) == v.schema


@pytest.mark.parametrize(("call", "status", "code"), [
    (lambda s: s.versions("nope"), 404, 40401),
    (lambda s: s.version(_subject("play.started"), "99"), 404, 40402),
    (lambda s: s.version(_subject("play.started"), "0"), 422, 42202),
    (lambda s: s.version(_subject("play.started"), "x1"), 422, 42202),
    (lambda s: s.by_id(10**6), 404, 40403),
    (lambda s: s.lookup(_subject("play.started"), {"type": "record", "name": "X", "fields": []}), 404, 40403),
])
def test_not_found_and_invalid_answer_confluent_codes(call, status: int, code: int) -> None:
    with pytest.raises(RegistryError) as exc:
        call(_store())
    assert (exc.value.status, exc.value.error_code) == (status, code)


def _changed(event_type: str, change) -> dict:
    schema = copy.deepcopy(Registry.load().latest(event_type).schema)
    change(schema)
    return schema


# the breaking changes tests/unit/test_schemas.py shows `playlog schemas check` refusing, and a good one
BREAKING = [
    lambda s: s["fields"].__setitem__(2, {"name": "play_id", "type": "long"}),  # type change
    lambda s: s["fields"].pop(3),  # removed field without default: old readers break
    lambda s: s.__setitem__("name", "PlayBegan"),  # record name carries the type
    lambda s: s["fields"].append({"name": "bitrate", "type": "int"}),  # new field without default
]
GOOD = lambda s: s["fields"].append({"name": "bitrate", "type": ["null", "int"], "default": None})  # noqa: E731


@pytest.mark.parametrize("change", BREAKING)
def test_compatibility_refuses_what_schemas_check_refuses(change) -> None:
    working = load_avsc_dir()
    working["play.started"] = _changed("play.started", change)
    assert check(Registry.load(), working), "playlog schemas check refuses it"
    store = _store()
    problems = store.problems(_subject("play.started"), working["play.started"])
    assert problems
    with pytest.raises(RegistryError) as exc:
        store.register(_subject("play.started"), working["play.started"])
    assert exc.value.status in (409, 422)


def test_a_compatible_change_is_a_new_version_with_a_new_id(tmp_path: Path) -> None:
    working = load_avsc_dir()
    working["play.started"] = _changed("play.started", GOOD)
    assert check(Registry.load(), working) == []
    store = _store(tmp_path)
    subject = _subject("play.started")
    assert store.problems(subject, working["play.started"]) == []
    before = store.version(subject, "latest")
    e = store.register(subject, working["play.started"])
    assert (e.version, e.id) == (before.version + 1, store.max_id) and e.id > max(v.id for v in Registry.load().versions)
    assert store.register(subject, working["play.started"]) == e  # the same schema again: the same entry
    # kept across restarts, and a new store of the same file agrees
    again = _store(tmp_path)
    assert again.version(subject, "latest") == e and again.by_id(e.id) == working["play.started"]


def test_an_empty_store_gives_its_own_ids_and_one_id_per_schema(tmp_path: Path) -> None:
    store = _store(tmp_path, empty=True)
    assert store.subjects() == [] and store.max_id == 0
    schema = Registry.load().latest("play.started").schema
    first = store.register("a.listening-playlog.events.PlayStarted", schema)
    second = store.register("b.listening-playlog.events.PlayStarted", schema)  # same schema, another subject
    assert first.id == second.id == 1
    assert [(e.subject, e.version) for e in store.uses_of(1)] == [
        ("a.listening-playlog.events.PlayStarted", 1), ("b.listening-playlog.events.PlayStarted", 1)]


def test_a_subject_must_name_the_record() -> None:
    schema = Registry.load().latest("play.started").schema
    for subject in ("playlog.listening-value", "playlog.events.PlayStarted", "x-playlog.events.PlaySkipped"):
        with pytest.raises(RegistryError) as exc:
            _store(empty=True).register(subject, schema)
        assert exc.value.error_code == 42201 and "TopicRecordNameStrategy" in exc.value.message


@pytest.mark.parametrize(("body", "code"), [
    ([], 400),
    ({}, 42201),
    ({"schema": ""}, 42201),
    ({"schema": "{not json"}, 42201),
    ({"schema": '"string"'}, 42201),
    ({"schema": '{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nosuchtype"}]}'}, 42201),
    ({"schema": '{"type": "record", "name": "X", "fields": []}', "schemaType": "PROTOBUF"}, 42201),
    ({"schema": '{"type": "record", "name": "X", "fields": []}', "references": [{"name": "a"}]}, 42201),
])
def test_malformed_schemas_are_refused_with_a_reason(body, code: int) -> None:
    with pytest.raises(RegistryError) as exc:
        parse_schema(body)
    assert exc.value.error_code == code and exc.value.message


def test_a_store_file_that_contradicts_our_ids_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    rows = [{"subject": "x-a.B", "version": 1, "id": 1, "schema": {"type": "record", "name": "B", "namespace": "a",
                                                                   "fields": []}}]
    path.write_text(json.dumps({"registered": rows}))
    with pytest.raises(PlaylogError, match="schema id 1 names two different schemas"):
        _store(tmp_path)
    path.write_text("{broken")
    with pytest.raises(PlaylogError, match="cannot read the registry store"):
        _store(tmp_path)
