"""The catalog CLI verbs through ``playlog.cli.main``: rights set, takedown, catalog generate."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from playlog.cli import main
from schemas.codec import default_codec


def run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def read(path: Path) -> list[dict]:
    codec = default_codec()
    return [codec.from_json(orjson.loads(line)) for line in path.read_bytes().splitlines()]


def test_rights_set_emits_one_event_per_territory(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    code = run(["rights", "set", "t1", "--territories", "de,FR", "--block", "--from", "2026-05-01T00:00:00Z",
                "--to", "2026-06-01T00:00:00+02:00", "--at", "2026-04-30T12:00:00Z", "--emit", str(out)])
    assert code == 0
    evs = read(out)
    assert [(e["type"], e["territory"], e["allowed"]) for e in evs] == [
        ("rights.changed", "DE", False), ("rights.changed", "FR", False)]
    assert evs[0]["valid_from"] == 1_777_593_600_000 and evs[0]["valid_to"] == 1_780_264_800_000
    assert evs[0]["occurred_at"] == 1_777_550_400_000
    assert evs[0]["event_id"] != evs[1]["event_id"]


def test_rights_set_unbounded_allow(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    assert run(["rights", "set", "t1", "--territories", "US", "--allow", "--emit", str(out)]) == 0
    (ev,) = read(out)
    assert ev["allowed"] is True and ev["valid_from"] is None and ev["valid_to"] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rights", "set", "t1", "--territories", "DE,XX", "--allow"], "'XX' is not an ISO 3166-1"),
        (["rights", "set", "t1", "--territories", "DE"], "--allow or --block"),
        (["rights", "set", "t1", "--territories", "DE", "--allow", "--from", "tomorrow"], "RFC 3339"),
        (["rights", "set", "t1", "--territories", "DE", "--allow", "--from", "2026-05-02T00:00:00Z",
          "--to", "2026-05-01T00:00:00Z"], "must be after"),
        (["rights", "set", "t1", "--territories", "*", "--block"], "only for takedowns"),
        (["takedown", "t1", "--territories", "DE", "--reason", " "], "--reason"),
        (["takedown", "t1", "--territories", "Germany", "--reason", "x"], "not an ISO 3166-1"),
    ],
)
def test_bad_input_is_one_line_and_no_event(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    out = tmp_path / "x.jsonl"
    assert run([*argv, "--emit", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err
    assert err.startswith("error:") and len(err.splitlines()) == 1
    assert not out.exists()


def test_takedown(tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    assert run(["takedown", "t9", "--territories", "*", "--reason", "DMCA notice", "--emit", str(out)]) == 0
    (ev,) = read(out)
    assert ev["type"] == "track.taken_down" and ev["territories"] == ["*"] and ev["reason"] == "DMCA notice"


def test_catalog_generate_writes_a_valid_deterministic_catalog(tmp_path: Path, capsys) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (a, b):
        assert run(["catalog", "generate", "--tracks", "300", "--seed", "4", "--no-progress", "--emit", str(out)]) == 0
    assert a.read_bytes() == b.read_bytes()
    evs = read(a)
    assert sum(e["type"] == "track.ingested" and not e["track_id"].endswith("-a") for e in evs) == 300
    assert "tracks/s" in capsys.readouterr().err
