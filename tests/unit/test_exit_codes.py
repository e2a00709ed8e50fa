"""Every exit code a verb documents (its --help, README.md, spec/api.md), through the real console
script in a subprocess: what a shell or CI job sees, not what a click test runner reports.

Documented codes tested here:
- every verb: --help 0; a usage error (unknown option, missing argument, bad choice/range) 2;
  bad input is one line on stderr, non-zero (2), never a traceback;
- ``replay royalties``: 0 done; 1 --diff-live found differences (1 wins over 3); 2 usage/input
  error, nothing written; 3 bad input listed, statement still written; --allow-bad makes 3 a 0;
- ``produce``: 0 all lines produced; 1 some lines bad; 2 nothing could be read or sent;
- ``schemas check``: 0 compatible; 1 a working schema would break readers;
- ``ingest``: 0 all masters ingested; 1 some failed (the others still ingested); 2 bad input;
- ``royalties``: 0 the live statement written; 2 bad period / no worker holds the view;
- ``up``: 2 bad configuration;
- ``python -m playlog`` runs the same command with the same exit codes.

The live royalty view ``--diff-live`` and ``playlog royalties`` ask for is a tiny HTTP server
started here that answers ``/status`` and ``/royalties/{period}`` the way a worker does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path

import jwt
import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / ".." / "shared" / "fixtures"
SAMPLE = FIXTURES / "royalties-sample.jsonl"
CONSOLE_SCRIPT = Path(sys.executable).with_name("playlog")  # installed with the project (pyproject [project.scripts])


def fixture_csv(period: str) -> str:
    return (FIXTURES / f"royalties-sample-{period}.csv").read_text()


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A private data dir, and no broker or worker this test did not start."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("PLAYLOG_")}
    out.update(
        PLAYLOG_DATA_DIR=str(tmp_path / "data"),
        PLAYLOG_BOOTSTRAP_SERVERS=f"127.0.0.1:{closed_port()}",
        PLAYLOG_WORKER_URLS=f"http://127.0.0.1:{closed_port()}",
        PLAYLOG_LOG_LEVEL="WARNING",
    )
    return out


def run(args: list[str], env: dict[str, str], cwd: Path, argv0: list[str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    assert CONSOLE_SCRIPT.exists(), f"the console script is not installed at {CONSOLE_SCRIPT} (make setup)"
    proc = subprocess.run([*(argv0 or [str(CONSOLE_SCRIPT)]), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error: ")]


# -- a worker's web endpoint, as worker/client.py reads it ----------------------------------------
class LiveWorker:
    def __init__(self, url: str, asked: list[str]) -> None:
        self.url, self.asked = url, asked


@contextmanager
def live_worker(statements: dict[str, str], owner: bool = True) -> Iterator[LiveWorker]:
    """Serve ``/status`` ({"owner": ...}) and ``/royalties/{period}`` (CSV) on a free loopback port;
    ``asked`` lists the paths requested."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            asked.append(self.path)
            if self.path == "/status":
                body, ctype, code = json.dumps({"owner": owner, "royalty_facts": 1}).encode(), "application/json", 200
            elif self.path.startswith("/royalties/") and self.path[len("/royalties/"):] in statements:
                body, ctype, code = statements[self.path[len("/royalties/"):]].encode(), "text/csv", 200
            else:
                body, ctype, code = b'{"error": {"status": 404, "message": "no"}}', "application/json", 404
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveWorker(f"http://127.0.0.1:{server.server_address[1]}", asked)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def with_bad_lines(tmp_path: Path) -> Path:
    """The fixture with two unusable lines inserted (line 2: not JSON; line 5: unknown type)."""
    lines = SAMPLE.read_text().splitlines()
    lines.insert(1, '{"type": "play.started", ')
    lines.insert(4, '{"type": "song.played", "event_id": "x", "occurred_at": "2026-05-01T00:00:00Z"}')
    path = tmp_path / "with-bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


# -- every verb -----------------------------------------------------------------------------------
VERBS = [  # spec/api.md and README.md, as literals: a verb that disappears fails here
    "broker", "topics create", "topics list", "topics describe", "produce", "consume", "schemas check",
    "schemas register", "schemas list", "worker", "royalties", "replay royalties", "sink parquet", "sink duckdb",
    "sink clickhouse", "sink query", "api", "cdn", "token", "ingest", "rights set", "takedown",
    "catalog generate", "up", "demo", "bench all",
]


def test_top_level_help_and_version_exit_0(env: dict[str, str], tmp_path: Path) -> None:
    proc = run(["--help"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: playlog ")
    for verb in {v.split()[0] for v in VERBS}:
        assert f"  {verb} " in proc.stdout or proc.stdout.rstrip().endswith(f"  {verb}"), verb
    proc = run(["--version"], env, tmp_path)
    assert proc.returncode == 0 and proc.stdout == f"playlog, version {version('playlog')}\n"


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_help_exits_0(verb: str, env: dict[str, str], tmp_path: Path) -> None:
    proc = run([*verb.split(), "--help"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Usage: playlog {verb} ")


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_unknown_option_is_a_usage_error_exit_2(verb: str, env: dict[str, str], tmp_path: Path) -> None:
    proc = run([*verb.split(), "--no-such-option"], env, tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert error_lines(proc) == ["error: No such option: --no-such-option"]
    assert f"(see 'playlog {verb} --help')" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-verb"], "error: No such command 'no-such-verb'."),
        (["produce"], "error: Missing argument 'FILE'."),
        (["token"], "error: Missing argument 'USER_ID'."),
        (["replay", "royalties", "--source", "x.jsonl", "--out", "x.csv"], "error: Missing option '--period'."),
        (["replay", "royalties", "--period", "2026-05", "--source", "x", "--out", "x.csv", "--engine", "duck"],
         "error: Invalid value for '--engine': 'duck' is not one of 'fold', 'sql'."),
        (["api", "--port", "70000"],
         "error: Invalid value for '--port': 70000 is not in the range 0<=x<=65535."),
        (["sink", "query", "--engine", "postgres"],
         "error: Invalid value for '--engine': 'postgres' is not one of 'duckdb', 'clickhouse'."),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str, env: dict[str, str], tmp_path: Path) -> None:
    proc = run(args, env, tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert error_lines(proc) == [message]
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["token", "u1", "--ttl", "0"], "--ttl must be a positive number of seconds, got 0"),
        (["rights", "set", "t1", "--territories", "DE"], "say --allow or --block"),
        (["rights", "set", "t1", "--territories", "DE,QQ", "--allow"], "QQ"),
        (["takedown", "t1", "--territories", "*", "--reason", " "], "--reason must not be empty"),
        (["sink", "query", "no_such_query"], "unknown query 'no_such_query'"),
        (["sink", "query", "skip_rate_by_context", "--warehouse", "missing.duckdb"], "no warehouse at missing.duckdb"),
        (["up", "--sinks", "duckdb,bogus"], "unknown sink(s) bogus"),
        (["rights", "set", "t1", "--territories", "DE", "--allow", "--emit", "a-file/x.jsonl"],
         "cannot write a-file/x.jsonl"),
        (["ingest", ".", "--emit", "a-file/x.jsonl"], "cannot write a-file/x.jsonl"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")  # a file where a directory would have to be
    proc = run(args, env, tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    (line,) = error_lines(proc)
    assert message in line


# -- replay royalties: 0 / 1 / 2 / 3 --------------------------------------------------------------
def replay_args(period: str, source: Path | str, out: Path, *extra: str) -> list[str]:
    return ["replay", "royalties", "--period", period, "--source", str(source), "--out", str(out), *extra]


@pytest.mark.parametrize("engine", ["fold", "sql"])
def test_replay_done_exits_0(engine: str, env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "may.csv"
    proc = run(replay_args("2026-05", SAMPLE, out, "--engine", engine), env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == fixture_csv("2026-05")


def test_replay_diff_live_equal_exits_0(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "may.csv"
    with live_worker({"2026-05": fixture_csv("2026-05")}) as w:
        proc = run(replay_args("2026-05", SAMPLE, out, "--diff-live"), {**env, "PLAYLOG_WORKER_URLS": w.url}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert w.asked == ["/status", "/royalties/2026-05"]
    assert proc.stdout == "" and "replay matches the live statement" in proc.stderr


def _live_with_one_changed_and_one_extra_line() -> tuple[str, list[str]]:
    """The fixture's May statement with line 7 one micro richer and a line of its own appended,
    and the diff the CLI must print for it ('-' only live, '+' only in the replay)."""
    header, *rows = fixture_csv("2026-05").splitlines()
    *key, amount = rows[6].rsplit(",", 1)
    changed = f"{key[0]},{int(amount) + 1}"
    extra = "2026-05,ZZ,premium,rhX,tX,1,9"
    live = "\n".join([header, *rows[:6], changed, *rows[7:], extra]) + "\n"
    return live, [f"-{changed}", f"-{extra}", f"+{rows[6]}"]


def test_replay_diff_live_difference_exits_1(env: dict[str, str], tmp_path: Path) -> None:
    live, diff = _live_with_one_changed_and_one_extra_line()
    out = tmp_path / "may.csv"
    with live_worker({"2026-05": live}) as w:
        proc = run(replay_args("2026-05", SAMPLE, out, "--diff-live"), {**env, "PLAYLOG_WORKER_URLS": w.url}, tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.splitlines() == diff
    assert "2 line(s) only live, 1 only in the replay" in proc.stderr
    assert out.read_text() == fixture_csv("2026-05")  # the replay's own statement is still written


def test_replay_difference_wins_over_bad_input_exit_1(env: dict[str, str], tmp_path: Path) -> None:
    live, diff = _live_with_one_changed_and_one_extra_line()
    with live_worker({"2026-05": live}) as w:
        proc = run(replay_args("2026-05", with_bad_lines(tmp_path), tmp_path / "may.csv", "--diff-live"),
                   {**env, "PLAYLOG_WORKER_URLS": w.url}, tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.splitlines() == diff
    assert "2 bad input item(s) excluded" in proc.stderr


def test_replay_diff_live_without_a_worker_exits_2_and_writes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "may.csv"
    with live_worker({}, owner=False) as w:  # answers, but does not hold the view
        proc = run(replay_args("2026-05", SAMPLE, out, "--diff-live"), {**env, "PLAYLOG_WORKER_URLS": w.url}, tmp_path)
    assert proc.returncode == 2, proc.stderr
    (line,) = error_lines(proc)
    assert "no running worker holds the live royalty view" in line


@pytest.mark.parametrize(
    ("period", "source", "message"),
    [
        ("May", SAMPLE, "error: --period 'May' is not a YYYY-MM month (e.g. 2026-05)"),
        ("2026-05", "missing.jsonl", "no such file"),
        ("2026-05", FIXTURES / "royalties-sample-2026-05.csv", "unknown source"),
    ],
)
def test_replay_usage_or_input_error_exits_2_and_writes_nothing(
    period: str, source: Path | str, message: str, env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "x.csv"
    proc = run(replay_args(period, source, out), env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    (line,) = error_lines(proc)
    assert message in line
    assert not out.exists()


@pytest.mark.parametrize("engine", ["fold", "sql"])
def test_replay_bad_input_exits_3_and_still_writes_the_statement(
    engine: str, env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "may.csv"
    source = with_bad_lines(tmp_path)
    proc = run(replay_args("2026-05", source, out, "--engine", engine), env, tmp_path)
    assert proc.returncode == 3, proc.stderr
    listed = [line for line in proc.stderr.splitlines() if line.startswith("bad input: ")]
    assert [line.split()[3].rstrip(":") for line in listed] == ["2", "5"]
    assert out.read_text() == fixture_csv("2026-05")
    allowed = run(replay_args("2026-05", source, out, "--engine", engine, "--allow-bad"), env, tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    assert len([line for line in allowed.stderr.splitlines() if line.startswith("bad input: ")]) == 2


# -- produce: 0 / 1 / 2 (--emit: no broker) -------------------------------------------------------
def _sample_lines(n: int) -> list[str]:
    return SAMPLE.read_text().splitlines()[:n]


def test_produce_all_good_exits_0(env: dict[str, str], tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(_sample_lines(5)) + "\n")
    out = tmp_path / "out.jsonl"
    proc = run(["produce", str(src), "--emit", str(out)], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(x)["event_id"] for x in out.read_text().splitlines()] == [
        json.loads(x)["event_id"] for x in _sample_lines(5)
    ]


def test_produce_some_bad_lines_exits_1_and_sends_the_good_ones(env: dict[str, str], tmp_path: Path) -> None:
    good = _sample_lines(4)
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join([good[0], "{not json", good[1], '{"type": "song.played"}', good[2], good[3]]) + "\n")
    out = tmp_path / "out.jsonl"
    proc = run(["produce", str(src), "--emit", str(out)], env, tmp_path)
    assert proc.returncode == 1, proc.stderr
    reported = [line for line in proc.stderr.splitlines() if line.startswith(f"{src}:")]
    assert [line.split(":")[1] for line in reported] == ["2", "4"]
    assert "unknown event type 'song.played'" in reported[1]
    assert [json.loads(x)["event_id"] for x in out.read_text().splitlines()] == [json.loads(x)["event_id"] for x in good]


def test_produce_nothing_read_exits_2(env: dict[str, str], tmp_path: Path) -> None:
    proc = run(["produce", str(tmp_path / "missing.jsonl"), "--emit", str(tmp_path / "out.jsonl")], env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert error_lines(proc) == [f"error: cannot read {tmp_path / 'missing.jsonl'}: no such file"]
    assert not (tmp_path / "out.jsonl").exists()


def test_produce_nothing_sent_exits_2(env: dict[str, str], tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(_sample_lines(3)) + "\n")
    (tmp_path / "a-file").write_text("")
    proc = run(["produce", str(src), "--emit", str(tmp_path / "a-file" / "out.jsonl")], env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    (line,) = error_lines(proc)
    assert line.startswith(f"error: cannot write {tmp_path / 'a-file' / 'out.jsonl'}")


# -- schemas check: 0 / 1 -------------------------------------------------------------------------
def test_schemas_check_compatible_exits_0(env: dict[str, str], tmp_path: Path) -> None:
    proc = run(["schemas", "check"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "schemas compatible with every registered version\n"


def test_schemas_check_breaking_change_exits_1(env: dict[str, str], tmp_path: Path) -> None:
    """A copy of the schemas package, shadowing the installed one, whose play.skipped gains a field
    without a default: the new schema cannot read data written with version 1."""
    shadow = tmp_path / "shadow"
    shutil.copytree(REPO / "schemas", shadow / "schemas", ignore=shutil.ignore_patterns("__pycache__"))
    avsc = shadow / "schemas" / "avro" / "play.skipped.avsc"
    schema = json.loads(avsc.read_text())
    schema["fields"].append({"name": "reason", "type": "string"})
    avsc.write_text(json.dumps(schema, indent=2))
    proc = run(["schemas", "check"], {**env, "PYTHONPATH": str(shadow)}, tmp_path)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("play.skipped: new schema cannot read version 1 data")
    assert "reason" in proc.stderr


# -- ingest: 0 / 1 / 2 ----------------------------------------------------------------------------
def _masters(tmp_path: Path, good: bool, corrupt: bool) -> Path:
    from ingest.synthetic import render_master, write_wav

    folder = tmp_path / "masters"
    folder.mkdir(exist_ok=True)
    if good:
        write_wav(folder / "good.wav", render_master(1_500, -18.0, seed=5), 44_100)
    if corrupt:
        (folder / "broken.flac").write_bytes(b"fLaC" + b"\x00" * 3000)
    return folder


def _ingest(folder: Path, env: dict[str, str], tmp_path: Path, out: Path) -> subprocess.CompletedProcess:
    return run(["ingest", str(folder), "--emit", str(out), "--no-progress", "--jobs", "1",
                "--at", "2026-05-01T00:00:00Z"], env, tmp_path)


def test_ingest_all_masters_ingested_exits_0(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    proc = _ingest(_masters(tmp_path, good=True, corrupt=False), env, tmp_path, out)
    assert proc.returncode == 0, proc.stderr
    types = [json.loads(x)["type"] for x in out.read_text().splitlines()]
    assert types == ["track.ingested"] + ["audio.encoded"] * 5  # AAC 96/160/320 + Opus 96/160


def test_ingest_a_failed_master_exits_1_and_the_others_are_ingested(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    proc = _ingest(_masters(tmp_path, good=True, corrupt=True), env, tmp_path, out)
    assert proc.returncode == 1, proc.stderr
    assert "FAILED  broken.flac:" in proc.stderr
    assert error_lines(proc) == ["error: 1 of 2 master(s) failed; see above"]
    types = [json.loads(x)["type"] for x in out.read_text().splitlines()]
    assert types == ["track.ingested"] + ["audio.encoded"] * 5


@pytest.mark.parametrize(("what", "message"), [("missing", "is not a directory of masters"),
                                               ("empty", "no masters in")])
def test_ingest_bad_input_exits_2(what: str, message: str, env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / what
    if what == "empty":
        folder.mkdir()
    proc = _ingest(folder, env, tmp_path, tmp_path / "events.jsonl")
    assert proc.returncode == 2, proc.stderr
    (line,) = error_lines(proc)
    assert message in line


# -- royalties (the live view): 0 / 2 -------------------------------------------------------------
def test_royalties_writes_the_live_statement_exit_0(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "april.csv"
    with live_worker({"2026-04": fixture_csv("2026-04")}) as w:
        proc = run(["royalties", "--period", "2026-04", "--out", str(out)], {**env, "PLAYLOG_WORKER_URLS": w.url},
                   tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == fixture_csv("2026-04")
    assert f"{len(fixture_csv('2026-04').splitlines()) - 1} statement line(s) for 2026-04" in proc.stderr


@pytest.mark.parametrize("period", ["2026-13", "may"])
def test_royalties_bad_period_exits_2(period: str, env: dict[str, str], tmp_path: Path) -> None:
    proc = run(["royalties", "--period", period, "--out", str(tmp_path / "x.csv")], env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert len(error_lines(proc)) == 1 and not (tmp_path / "x.csv").exists()


def test_royalties_without_a_worker_exits_2(env: dict[str, str], tmp_path: Path) -> None:
    proc = run(["royalties", "--period", "2026-04", "--out", str(tmp_path / "x.csv")], env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    (line,) = error_lines(proc)
    assert "no running worker holds the live royalty view" in line


# -- the event-writing verbs with --emit: 0 -------------------------------------------------------
def test_token_exits_0_with_a_token_for_the_user(env: dict[str, str], tmp_path: Path) -> None:
    proc = run(["token", "u42", "--ttl", "60"], {**env, "PLAYLOG_TOKEN_SECRET": "s3cret-for-this-test"}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "u42" and claims["exp"] - claims["iat"] == 60


@pytest.mark.parametrize(
    ("args", "types"),
    [
        (["rights", "set", "t1", "--territories", "DE,FR", "--allow", "--at", "2026-05-01T00:00:00Z"],
         ["rights.changed", "rights.changed"]),
        (["takedown", "t1", "--territories", "*", "--reason", "dispute", "--at", "2026-05-01T00:00:00Z"],
         ["track.taken_down"]),
    ],
)
def test_catalog_verbs_with_emit_exit_0(args: list[str], types: list[str], env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    proc = run([*args, "--emit", str(out)], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(x)["type"] for x in out.read_text().splitlines()] == types


def test_sink_query_lists_the_queries_exit_0(env: dict[str, str], tmp_path: Path) -> None:
    proc = run(["sink", "query"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["listening_hours_per_product", "rightsholder_totals",
                                        "skip_rate_by_context", "top_tracks_per_country_day"]  # README's table


# -- python -m playlog ----------------------------------------------------------------------------
def test_python_dash_m_playlog_is_the_same_command(env: dict[str, str], tmp_path: Path) -> None:
    argv0 = [sys.executable, "-m", "playlog"]
    proc = run(["--version"], env, tmp_path, argv0=argv0)
    assert proc.returncode == 0 and proc.stdout == f"playlog, version {version('playlog')}\n"
    out = tmp_path / "may.csv"
    proc = run(replay_args("2026-05", with_bad_lines(tmp_path), out), env, tmp_path, argv0=argv0)
    assert proc.returncode == 3, proc.stderr
    assert out.read_text() == fixture_csv("2026-05")
    proc = run(["replay", "royalties", "--period", "May", "--source", str(SAMPLE), "--out", "x.csv"], env, tmp_path,
               argv0=argv0)
    assert proc.returncode == 2
    assert error_lines(proc) == ["error: --period 'May' is not a YYYY-MM month (e.g. 2026-05)"]
