"""``playlog replay royalties``: files, the Parquet archive layout, bad input, outputs, live diff."""

from __future__ import annotations

import subprocess
import sys
import types
from collections import defaultdict
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from core.errors import PlaylogError
from core.timefmt import format_ts, parse_ts
from processors.statement import StatementLine, parse_csv
from replay.cli import replay_group
from replay.sources import SourceReport, iter_archive, iter_jsonl
from schemas.codec import default_codec
from tests.unit.test_royalties import FIXTURES, load_fixture
from tests.unit.test_royalties_props import oracle

PLAYLOG = Path(sys.executable).with_name("playlog")  # the console script installed with the project
SAMPLE = FIXTURES / "royalties-sample.jsonl"


def expected(period: str) -> bytes:
    return (FIXTURES / f"royalties-sample-{period}.csv").read_bytes()


def invoke(*args: str) -> object:
    return CliRunner().invoke(replay_group, ["royalties", *args], catch_exceptions=True)


# -- JSON Lines ---------------------------------------------------------------------------------
def test_console_script_reproduces_the_fixture_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "may.csv"
    proc = subprocess.run(
        [str(PLAYLOG), "replay", "royalties", "--period", "2026-05", "--source", str(SAMPLE), "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == expected("2026-05")


def test_fixture_april_via_click_and_stdout(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "april.csv"
    result = invoke("--period", "2026-04", "--source", str(SAMPLE), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == expected("2026-04")
    result = invoke("--period", "2026-04", "--source", str(SAMPLE), "--out", "-")
    assert result.stdout.encode() == expected("2026-04")


def _with_bad_lines(tmp_path: Path) -> tuple[Path, dict[int, str]]:
    lines = SAMPLE.read_bytes().splitlines()
    bad = {
        3: b'{"type": "play.started", "event_id": ',  # truncated JSON
        10: b"[1, 2, 3]",  # not an object
        20: b'{"type": "song.played", "event_id": "x", "occurred_at": "2026-05-01T00:00:00Z"}',
        30: orjson.dumps(
            {
                "type": "play.progress",
                "event_id": "neg",
                "occurred_at": "2026-05-02T00:00:00Z",
                "play_id": "p",
                "user_id": "u",
                "track_id": "t001",
                "ms_played": -5,
                "country": "SE",
                "product": "free",
                "context_uri": None,
            }
        ),  # fmt: skip
    }
    out: list[bytes] = []
    for i, line in enumerate(lines, start=1):
        if i in bad:
            out.append(bad[i])
        out.append(line)
    # the bad lines were inserted before line i of the original: their numbers in the new file
    numbers, shift = {}, 0
    for i in sorted(bad):
        numbers[i + shift] = bad[i].decode()
        shift += 1
    path = tmp_path / "with-bad.jsonl"
    path.write_bytes(b"\n".join(out) + b"\n\n")  # a trailing blank line is not an event
    return path, numbers


def test_malformed_lines_are_listed_with_numbers_and_reasons(tmp_path: Path) -> None:
    path, numbers = _with_bad_lines(tmp_path)
    out = tmp_path / "may.csv"
    result = invoke("--period", "2026-05", "--source", str(path), "--out", str(out))
    assert result.exit_code == 3
    listed = [line for line in result.stderr.splitlines() if line.startswith("bad input: ")]
    assert [int(line.split()[3].rstrip(":")) for line in listed] == sorted(numbers)
    assert "not valid JSON" in listed[0] and "expected a JSON object" in listed[1]
    assert "unknown event type 'song.played'" in listed[2] and "ms_played is negative" in listed[3]
    assert "4 bad input item(s) excluded" in result.stderr
    assert out.read_bytes() == expected("2026-05")  # computed from the good lines anyway
    again = invoke("--period", "2026-05", "--source", str(path), "--out", str(out), "--allow-bad")
    assert again.exit_code == 0 and len([x for x in again.stderr.splitlines() if x.startswith("bad")]) == 4


def test_time_window_filters_events(tmp_path: Path) -> None:
    out = tmp_path / "april.csv"
    result = invoke("--period", "2026-04", "--source", str(SAMPLE), "--out", str(out), "--to", "2026-05-01")
    assert result.exit_code == 0, result.output
    may1 = parse_ts("2026-05-01T00:00:00Z")
    # expected from the tests' own literal reading of spec/royalties.md, not from the fold under test
    want = oracle([e for e in load_fixture() if e["occurred_at"] < may1], "2026-04")
    assert parse_csv(out.read_text()) == want
    assert want != parse_csv(expected("2026-04").decode())  # the window left out events that count
    result = invoke("--period", "2026-05", "--source", str(SAMPLE), "--out", str(out), "--from", "2026-06-01")
    assert result.exit_code == 0 and out.read_text().count("\n") == 1  # header only


# -- user errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "2026-13", "--source", str(SAMPLE)], "not a YYYY-MM month"),
        (["--period", "2026-5", "--source", str(SAMPLE)], "not a YYYY-MM month"),
        (["--period", "2026-05", "--source", "/nonexistent/events.jsonl"], "no such file"),
        (["--period", "2026-05", "--source", "/nonexistent/dir"], "no such file or directory"),
        (
            ["--period", "2026-05", "--source", str(FIXTURES / "royalties-sample-2026-05.csv")],
            "unknown source",
        ),
        (["--period", "2026-05", "--source", str(SAMPLE), "--from", "yesterday"], "--from 'yesterday'"),
        (
            ["--period", "2026-05", "--source", str(SAMPLE), "--from", "2026-05-02", "--to", "2026-05-01"],
            "after",
        ),
        (["--period", "2026-05", "--source", "kafka", "--engine", "sql"], "sql engine reads files"),
    ],
)
def test_user_errors_are_playlog_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = invoke(*args, "--out", str(tmp_path / "x.csv"))
    assert isinstance(result.exception, PlaylogError), result.output
    assert message in str(result.exception)
    assert not (tmp_path / "x.csv").exists()


def test_console_script_user_error_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(PLAYLOG), "replay", "royalties", "--period", "May", "--source", str(SAMPLE), "--out", "x.csv"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: --period 'May' is not a YYYY-MM month (e.g. 2026-05)"]


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.jsonl"  # a directory where the file should be: unreadable, also for root
    path.mkdir()
    with pytest.raises(PlaylogError, match=r"cannot read .*locked.jsonl: Is a directory"):
        list(iter_jsonl(path, SourceReport()))


# -- engines and the live diff ------------------------------------------------------------------
def test_sql_engine_unavailable_is_a_playlog_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "replay.sql_engine", types.ModuleType("replay.sql_engine"))
    result = invoke(
        "--period", "2026-05", "--source", str(SAMPLE), "--engine", "sql", "--out", str(tmp_path / "x")
    )
    assert isinstance(result.exception, PlaylogError)
    assert str(result.exception).startswith("sql engine unavailable")


def test_sql_engine_is_dispatched_with_path_and_period(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    fake = types.ModuleType("replay.sql_engine")
    line = StatementLine("2026-05", "SE", "free", "rh", "t", 1, 5)
    fake.compute_from_path = lambda path, period: calls.append((path, period)) or [line]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "replay.sql_engine", fake)
    out = tmp_path / "x.csv"
    result = invoke("--period", "2026-05", "--source", str(SAMPLE), "--engine", "sql", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert calls == [(SAMPLE, "2026-05")] and parse_csv(out.read_text()) == [line]


def _fake_live(monkeypatch: pytest.MonkeyPatch, lines: list[StatementLine]) -> list[object]:
    seen: list[object] = []
    fake = types.ModuleType("worker.client")
    fake.fetch_statement = lambda settings, period: seen.append(period) or list(lines)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "worker.client", fake)
    return seen


def test_diff_live_equal_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _fake_live(monkeypatch, parse_csv(expected("2026-05").decode()))
    result = invoke(
        "--period", "2026-05", "--source", str(SAMPLE), "--out", str(tmp_path / "x.csv"), "--diff-live"
    )
    assert result.exit_code == 0, result.output
    assert seen == ["2026-05"] and result.stdout == ""


def test_diff_live_prints_differing_lines_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = parse_csv(expected("2026-05").decode())
    changed = live[5]._replace(amount_micros=live[5].amount_micros + 1)
    extra = StatementLine("2026-05", "ZZ", "free", "rhX", "tX", 1, 9)
    _fake_live(monkeypatch, [*live[:5], changed, *live[6:], extra])
    result = invoke(
        "--period", "2026-05", "--source", str(SAMPLE), "--out", str(tmp_path / "x.csv"), "--diff-live"
    )
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "-" + ",".join(map(str, changed)),
        "-" + ",".join(map(str, extra)),
        "+" + ",".join(map(str, live[5])),
    ]


def test_diff_live_unavailable_fails_before_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "worker.client", None)  # import raises ImportError
    out = tmp_path / "x.csv"
    result = invoke("--period", "2026-05", "--source", str(SAMPLE), "--out", str(out), "--diff-live")
    assert isinstance(result.exception, PlaylogError) and "live royalty view unavailable" in str(
        result.exception
    )
    assert not out.exists()


# -- outputs ------------------------------------------------------------------------------------
def test_parquet_output(tmp_path: Path) -> None:
    out = tmp_path / "may.parquet"
    result = invoke("--period", "2026-05", "--source", str(SAMPLE), "--out", str(out))
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.schema.names == list(StatementLine._fields)
    assert table.schema.field("amount_micros").type == pa.int64()
    rows = [StatementLine(**r) for r in table.to_pylist()]
    assert rows == parse_csv(expected("2026-05").decode())


# -- the Parquet archive ------------------------------------------------------------------------
_TS_FIELDS = ("occurred_at", "valid_from", "valid_to")


def write_archive(
    root: Path, events: list[dict], ts_unit: str = "ms", extra_rows: list[dict] | None = None
) -> None:
    """The archive layout as documented: one column per event field + topic/partition/offset/key/type/
    event_id/occurred_at, timestamps as timestamp[ms, UTC], files under topic=<t>/date=<d>/."""
    from topics.topic_catalog import key_of, topic_of

    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for offset, e in enumerate(events):
        topic = topic_of(e["type"])
        row = {"topic": topic, "partition": 0, "offset": offset, "key": key_of(e), **e}
        groups[(topic, format_ts(e["occurred_at"])[:10])].append(row)
    for row in extra_rows or []:
        groups[(row["topic"], "2026-05-01")].append(row)
    columns = sorted({k for rows in groups.values() for r in rows for k in r})
    for (topic, date), rows in groups.items():
        arrays, names = [], []
        for c in columns:
            values = [r.get(c) for r in rows]
            if c in _TS_FIELDS:
                arr = pa.array(values, type=pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
                if ts_unit != "ms":
                    arr = arr.cast(pa.timestamp(ts_unit, tz="UTC"))
            else:
                arr = pa.array(values)
            arrays.append(arr)
            names.append(c)
        folder = root / f"topic={topic}" / f"date={date}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_arrays(arrays, names=names), folder / f"{topic}-0-{len(rows)}.parquet")


def test_archive_directory_reproduces_the_fixture(tmp_path: Path) -> None:
    events = load_fixture()
    codec = default_codec()
    user = codec.from_json({"type": "user.registered", "event_id": "ux", "occurred_at": "2026-05-01T00:00:00Z",
                            "user_id": "u1", "country": "SE", "product": "free", "display_name": "x"})  # fmt: skip
    write_archive(tmp_path / "archive", [*events, user])
    out = tmp_path / "may.csv"
    result = invoke("--period", "2026-05", "--source", str(tmp_path / "archive"), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == expected("2026-05")


def test_archive_rows_become_in_memory_events(tmp_path: Path) -> None:
    events = [
        e for e in load_fixture() if e["type"] in ("rights.changed", "track.ingested", "play.progress")
    ][:300]
    bad_row = {"topic": "listening", "partition": 0, "offset": 999, "key": "u", "type": "play.teleported",
               "event_id": "bad-1", "occurred_at": 0}  # fmt: skip
    write_archive(tmp_path, events, ts_unit="us", extra_rows=[bad_row])
    report = SourceReport()
    got = list(iter_archive(tmp_path, report, progress=False))
    assert sorted(got, key=lambda e: e["event_id"]) == sorted(events, key=lambda e: e["event_id"])
    assert report.events == len(events)
    assert [b.reason for b in report.bad] == ["unknown event type 'play.teleported'"]
    assert "topic=listening" in report.bad[0].where and "row" in report.bad[0].where


def test_empty_directory_is_not_an_archive(tmp_path: Path) -> None:
    result = invoke("--period", "2026-05", "--source", str(tmp_path), "--out", str(tmp_path / "x.csv"))
    assert isinstance(result.exception, PlaylogError) and "no Parquet files" in str(result.exception)


# -- Kafka (the transport is faked here; tests/integration covers the real broker) -------------
def test_kafka_source_decodes_records_and_lists_bad_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.settings import load
    from topics.consumer import Record
    from topics.topic_catalog import topic_of

    codec = default_codec()
    events = load_fixture()
    settings = load()
    records = [
        Record(settings.topic_prefix + topic_of(e["type"]), 0, i, None, codec.encode(e), 0)
        for i, e in enumerate(events)
    ]
    records.insert(7, Record(settings.topic_prefix + "listening", 1, 5, None, b"\x00garbage", 0))
    records.insert(9, Record(settings.topic_prefix + "listening", 1, 6, None, None, 0))
    asked: list[list[str]] = []

    def fake_iter_records(settings_: object, topics: list[str], **kwargs: object):  # noqa: ANN202
        asked.append(topics)
        assert kwargs.get("until_end") is True
        return iter(records)

    monkeypatch.setattr("topics.consumer.iter_records", fake_iter_records)
    out = tmp_path / "may.csv"
    result = invoke("--period", "2026-05", "--source", "kafka", "--out", str(out))
    assert result.exit_code == 3
    assert out.read_bytes() == expected("2026-05")
    assert asked == [sorted(settings.topic_prefix + t for t in ("catalog", "finance", "listening", "rights"))]
    bad = [line for line in result.stderr.splitlines() if line.startswith("bad input: ")]
    listening = settings.topic_prefix + "listening"
    assert len(bad) == 2 and bad[0].startswith(f"bad input: {listening}[1]@5: unknown schema id")
    assert bad[1] == f"bad input: {listening}[1]@6: record has no value"


def test_archive_written_by_the_archive_sink_layout_round_trips(tmp_path: Path) -> None:
    from sinks import archive_schema
    from topics.topic_catalog import key_of, topic_of

    codec = default_codec()
    queued = codec.from_json({"type": "player.play_requested", "event_id": "pq1", "occurred_at": "2026-05-03T00:00:00Z",
                              "user_id": "u1", "device_id": "d", "track_ids": ["t001"], "context_uri": None,
                              "offset": 7, "position_ms": 0})  # fmt: skip
    events = [*load_fixture(), queued]
    records = [(topic_of(e["type"]), 0, i, key_of(e), e) for i, e in enumerate(events)]
    for (topic, partition, date), recs in archive_schema.group_by_file(records).items():
        path = archive_schema.file_path(tmp_path, topic, date, partition, recs[0][2], recs[-1][2])
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(archive_schema.records_to_table(recs), path)
    report = SourceReport()
    got = list(iter_archive(tmp_path, report, progress=False))
    assert sorted(got, key=lambda e: e["event_id"]) == sorted(events, key=lambda e: e["event_id"])
    assert next(e for e in got if e["event_id"] == "pq1")["offset"] == 7  # stored as ev_offset
    out = tmp_path / "may.csv"
    assert invoke("--period", "2026-05", "--source", str(tmp_path), "--out", str(out)).exit_code == 0
    assert out.read_bytes() == expected("2026-05")
