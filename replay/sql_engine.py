"""The ``sql`` replay engine: the royalty statement (spec/royalties.md) computed by DuckDB.

``compute_from_path(path, period)`` reads a Parquet archive directory (``sinks/archive_schema.py``
layout), one ``.parquet`` file, or a ``.jsonl`` file of events, and returns the statement lines,
exact to the micro (integer arithmetic in HUGEINT throughout the money step).

How validity is enforced (events.md "Bad input": invalid events take no part):

- **Parquet archive**: the archive sink writes only events that decoded and hold every invariant
  (the same ``Codec.decode`` + ``broken_invariant`` check as everywhere); the rest go to the dead
  letter topic. The engine trusts the archive.
- **JSON Lines**, ``validate="codec"`` (the default): one pass with the codec's ``from_json``
  decides validity exactly as the producer and the fold engine do (types, unknown fields, missing
  fields, invariants); valid events are handed to DuckDB as an Arrow table, rejected lines are
  returned in :class:`SqlResult` (line number + reason), never skipped silently.
- **JSON Lines**, ``validate="sql"``: DuckDB reads the file itself with ``read_json`` and explicit
  columns; required fields, the royalty-relevant invariants (shares sum to 1,000,000, a
  rightsholder at most once, no negative share, ``ms_played`` >= 0, known product, country and
  period formats, ``valid_to`` >= ``valid_from``, territories) are checked in SQL. It is faster but
  DuckDB's reader coerces some wrong JSON types (``"12"`` read as an int) and ignores unknown
  fields, so it can accept a line the codec rejects: use it for trusted files and benchmarks.

Copies of one ``event_id`` carry the same content (royalties.md), and every rule is a min / max /
latest / exists over events, which copies do not change, so no explicit dedup pass is needed:
ties on (occurred_at, event_id) only happen between copies of one event.

Plays, as the fold assembles them (processors/plays.py): the deciding event (earliest play.started,
else earliest event) over every event of the play_id decides the play's user, and ms is the largest
``ms_played`` of **that user's** events; other users' events on the play_id count nowhere. Client
events (``received_at`` set by the API) that break the client-event rule (processors/grants.py: a
play grant of their user and track, times within its window) take no part at all: the SQL checks
the grant with the same regular expression and by encoding the event's ids as the grant does, so
it needs neither the key nor the wall clock; the codec path also lists them as rejected lines,
with the fold's reason.
"""

from __future__ import annotations

import logging
import re
from calendar import monthrange
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from processors import rules
from processors.grants import GRANT_PATTERN, client_event_reason
from processors.rules import (
    CLIENT_SKEW_MS,
    DAY_MS,
    IMPOSSIBLE_MS,
    LOOP_CAP,
    MIN_STREAM_MS,
    OFFLINE_LICENCE_MS,
    PPM,
)
from processors.statement import StatementLine
from schemas.codec import Codec, EventError, default_codec
from schemas.invariants import PRODUCTS
from schemas.validate import decode_json, parse_json_line

log = logging.getLogger(__name__)

# The rules' constants and event-type families come from processors/rules.py, formatted into the SQL.
PLAY_TYPES = tuple(sorted(rules.PLAY_TYPES))
ROYALTY_TYPES = tuple(sorted(rules.ROYALTY_TYPES))
_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _sql_in(values: Iterable[str]) -> str:
    """``('a', 'b')``: a SQL list of string literals (sorted, so the SQL text is stable)."""
    return "(" + ", ".join(_sql_str(v) for v in sorted(values)) + ")"


_STARTED = _sql_str(rules.PLAY_STARTED)
_SKIPPED = _sql_str(rules.PLAY_SKIPPED)
_MS_TYPES = _sql_in(rules.PLAY_MS_TYPES)
_PLAY_TYPES = _sql_in(rules.PLAY_TYPES)
_PRODUCTS = _sql_in(PRODUCTS)
_EVERYWHERE = _sql_str(rules.EVERYWHERE)


def _b64u_sql(col: str) -> str:
    """Unpadded base64url of a VARCHAR's UTF-8 bytes (processors.grants.b64u)."""
    return f"rtrim(translate(to_base64(encode({col})), '+/', '-_'), '=')"


_ISSUED = "TRY_CAST(split_part(play_id, '.', 2) AS BIGINT)"
#: processors.grants.client_event_reason(event) is None, for a listening event (see the module doc)
CLIENT_OK_SQL = f"""(received_at IS NULL OR (
    coalesce(regexp_full_match(play_id, {_sql_str(GRANT_PATTERN)}), false)
    AND split_part(play_id, '.', 4) = {_b64u_sql('user_id')}
    AND split_part(play_id, '.', 5) = {_b64u_sql('track_id')}
    AND received_at >= {_ISSUED} - {CLIENT_SKEW_MS}
    AND received_at - {_ISSUED} <= {OFFLINE_LICENCE_MS}
    AND occurred_at >= {_ISSUED} - {CLIENT_SKEW_MS}
    AND occurred_at <= received_at + {CLIENT_SKEW_MS}))"""

# The columns the engine reads, with their DuckDB types (timestamps as BIGINT epoch ms).
RS_TYPE = "STRUCT(rightsholder_id VARCHAR, share_ppm INTEGER)[]"
COLUMNS: dict[str, str] = {
    "type": "VARCHAR",
    "event_id": "VARCHAR",
    "occurred_at": "BIGINT",
    "play_id": "VARCHAR",
    "user_id": "VARCHAR",
    "track_id": "VARCHAR",
    "country": "VARCHAR",
    "product": "VARCHAR",
    "ms_played": "INTEGER",
    "context_uri": "VARCHAR",
    "isrc": "VARCHAR",
    "rightsholders": RS_TYPE,
    "territory": "VARCHAR",
    "allowed": "BOOLEAN",
    "valid_from": "BIGINT",
    "valid_to": "BIGINT",
    "territories": "VARCHAR[]",
    "period": "VARCHAR",
    "amount_micros": "BIGINT",
    "received_at": "BIGINT",
}
TS_COLUMNS = ("occurred_at", "valid_from", "valid_to", "received_at")
ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "BOOLEAN": pa.bool_(),
    "VARCHAR[]": pa.list_(pa.string()),
    RS_TYPE: pa.list_(pa.struct([("rightsholder_id", pa.string()), ("share_ppm", pa.int32())])),
}


class SqlEngineError(ValueError):
    """The source cannot be read (missing, empty, not an archive, unreadable lines in sql mode)."""


@dataclass
class SqlResult:
    lines: list[StatementLine]
    events_read: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)


def period_bounds(period: str) -> tuple[int, int]:
    """[start, end) of a ``YYYY-MM`` period in epoch ms (UTC)."""
    if not isinstance(period, str) or not _PERIOD.match(period):
        raise SqlEngineError(f"period must look like YYYY-MM, got {period!r}")
    y, m = int(period[:4]), int(period[5:])
    start = datetime(y, m, 1, tzinfo=UTC)
    end = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=UTC)
    assert (end - start).days == monthrange(y, m)[1]
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


# -- the statement in SQL ---------------------------------------------------------------------
def statement_sql(lo: int, hi: int, kind: str = "statement") -> str:
    """The royalty statement over a relation ``ev`` (COLUMNS) for plays with play_time in [lo, hi).

    ``kind="statement"``: country, product, rightsholder_id, track_id, streams, amount_micros.
    ``kind="plays"``: every play of the period (PLAY_COLUMNS) with its ``is_stream`` verdict.
    """
    return f"""
WITH
pev AS (  -- the listening events that may take part: trusted ones, and client ones the grant rule admits
  SELECT * FROM ev WHERE type IN {_PLAY_TYPES} AND {CLIENT_OK_SQL}
),
started AS (  -- per play: its earliest play.started (occurred_at, event_id) and that event's attributes
  SELECT play_id, min({{'t': occurred_at, 'e': event_id, 'u': user_id, 'tr': track_id, 'c': country, 'p': product,
                       'cx': context_uri}}) AS d
  FROM pev WHERE type = {_STARTED} GROUP BY play_id
),
headless AS (  -- plays without any play.started: decided by their earliest event
  SELECT e.play_id, min({{'t': e.occurred_at, 'e': e.event_id, 'u': e.user_id, 'tr': e.track_id, 'c': e.country,
                         'p': e.product, 'cx': e.context_uri}}) AS d
  FROM pev e ANTI JOIN started s ON s.play_id = e.play_id
  WHERE e.type IN {_MS_TYPES}
  GROUP BY e.play_id
),
deciding AS (SELECT play_id, d FROM started UNION ALL SELECT play_id, d FROM headless),
later AS (  -- per play: the largest ms_played of the play's user's progress/skipped/completed events
  SELECT e.play_id, max(e.ms_played) AS ms, bool_or(e.type = {_SKIPPED}) AS skipped
  FROM pev e JOIN deciding p ON p.play_id = e.play_id AND e.user_id = p.d.u
  WHERE e.type IN {_MS_TYPES} GROUP BY e.play_id
),
plays AS (
  SELECT p.play_id, p.d, coalesce(l.ms, 0) AS ms, coalesce(l.skipped, false) AS skipped
  FROM deciding p LEFT JOIN later l USING (play_id)
),
pp AS (
  SELECT play_id, d.t AS pt, d.u AS user_id, d.tr AS track_id, d.c AS country, d.p AS product, ms, skipped,
         d.cx AS context_uri,
         CASE WHEN d.t >= 0 THEN d.t // {DAY_MS} ELSE -((-d.t - 1) // {DAY_MS}) - 1 END AS day
  FROM plays WHERE d.t >= {lo} AND d.t < {hi}
),
ti AS (
  SELECT track_id, isrc, occurred_at AS t, event_id, rightsholders FROM ev WHERE type = 'track.ingested'
),
first_isrc AS (SELECT track_id, arg_min(isrc, {{'t': t, 'e': event_id}}) AS isrc FROM ti GROUP BY track_id),
canon_of AS (SELECT isrc, arg_min(track_id, {{'t': t, 'e': event_id}}) AS canon FROM ti GROUP BY isrc),
tmap AS (  -- every known track id -> its canonical id and the canonical id's ISRC
  SELECT f.track_id, c.canon, f2.isrc AS canon_isrc
  FROM first_isrc f JOIN canon_of c ON f.isrc = c.isrc JOIN first_isrc f2 ON f2.track_id = c.canon
),
shares AS (  -- ingests per (ISRC, instant); ties on occurred_at go to the larger event_id (latest)
  SELECT isrc, t, arg_max(rightsholders, event_id) AS rightsholders FROM ti GROUP BY isrc, t
),
rights AS (
  SELECT coalesce(m.canon, r.track_id) AS canon, r.territory, r.occurred_at AS t,
         arg_max({{'a': r.allowed, 'f': r.valid_from, 'v': r.valid_to}}, r.event_id) AS w
  FROM ev r LEFT JOIN tmap m ON m.track_id = r.track_id
  WHERE r.type = 'rights.changed'
  GROUP BY ALL
),
rights_iv AS (
  SELECT *, lead(t) OVER (PARTITION BY canon, territory ORDER BY t) AS t_next FROM rights
),
shares_iv AS (
  SELECT *, lead(t) OVER (PARTITION BY isrc ORDER BY t) AS t_next FROM shares
),
takedowns AS (
  SELECT canon, terr, min(t) AS first_t FROM (
    SELECT coalesce(m.canon, d.track_id) AS canon, unnest(d.territories) AS terr, d.occurred_at AS t
    FROM ev d LEFT JOIN tmap m ON m.track_id = d.track_id WHERE d.type = 'track.taken_down'
  ) GROUP BY ALL
),
pools AS (
  SELECT country, product, arg_max(amount_micros, {{'t': occurred_at, 'e': event_id}}) AS pool
  FROM ev WHERE type = 'royalty.pool_declared' AND period = strftime(make_timestamp({lo}::BIGINT * 1000), '%Y-%m')
  GROUP BY ALL
),
impossible AS (  -- (user, day) whose plays sum over the daily limit: none of them count
  SELECT user_id, day FROM pp GROUP BY ALL HAVING sum(ms) > {IMPOSSIBLE_MS}
),
cand AS (
  SELECT pp.play_id, pp.pt, pp.user_id, pp.country, pp.product, pp.day, m.canon, m.canon_isrc
  FROM pp JOIN tmap m ON m.track_id = pp.track_id
  WHERE pp.ms >= {MIN_STREAM_MS}
    AND NOT EXISTS (SELECT 1 FROM impossible i WHERE i.user_id = pp.user_id AND i.day = pp.day)
),
with_rights AS (  -- the rights version in force at play time: [t, next t) of its (canon, territory)
  SELECT j.*, r.w AS w FROM cand j
  JOIN rights_iv r ON j.canon = r.canon AND j.country = r.territory AND j.pt >= r.t
                      AND (r.t_next IS NULL OR j.pt < r.t_next)
),
with_shares AS (  -- the ingest of the canonical ISRC in force at play time
  SELECT j.*, s.rightsholders FROM with_rights j
  JOIN shares_iv s ON j.canon_isrc = s.isrc AND j.pt >= s.t AND (s.t_next IS NULL OR j.pt < s.t_next)
  WHERE j.w.a AND (j.w.f IS NULL OR j.w.f <= j.pt) AND (j.w.v IS NULL OR j.pt < j.w.v)
),
eligible AS (
  SELECT j.play_id, j.pt, j.user_id, j.country, j.product, j.day, j.canon, j.rightsholders
  FROM with_shares j
  LEFT JOIN takedowns tc ON tc.canon = j.canon AND tc.terr = j.country
  LEFT JOIN takedowns ta ON ta.canon = j.canon AND ta.terr = {_EVERYWHERE}
  WHERE (tc.first_t IS NULL OR tc.first_t > j.pt) AND (ta.first_t IS NULL OR ta.first_t > j.pt)
),
loops AS (  -- (user, canon, day) with more eligible plays than the loop cap
  SELECT user_id, canon, day FROM eligible GROUP BY ALL HAVING count(*) > {LOOP_CAP}
),
streams AS (
  SELECT e.* FROM eligible e
  WHERE NOT EXISTS (SELECT 1 FROM loops l WHERE l.user_id = e.user_id AND l.canon = e.canon AND l.day = e.day)
  UNION ALL
  SELECT * FROM (
    SELECT e.* FROM eligible e SEMI JOIN loops l ON l.user_id = e.user_id AND l.canon = e.canon AND l.day = e.day
  ) QUALIFY row_number() OVER (PARTITION BY user_id, canon, day ORDER BY pt, play_id) <= {LOOP_CAP}
),
totals AS (SELECT country, product, count(*) AS s FROM streams GROUP BY ALL),
raw_lines AS (
  SELECT country, product, rh.rightsholder_id, canon AS track_id,
         count(*) AS streams, sum(rh.share_ppm)::HUGEINT AS share_sum
  FROM (SELECT country, product, canon, unnest(rightsholders) AS rh FROM streams)
  WHERE rh.share_ppm > 0
  GROUP BY ALL
),
exact AS (
  SELECT l.*, coalesce(p.pool, 0)::HUGEINT AS pool, t.s,
         (coalesce(p.pool, 0)::HUGEINT * l.share_sum) // (t.s::HUGEINT * {PPM}) AS fl,
         (coalesce(p.pool, 0)::HUGEINT * l.share_sum) % (t.s::HUGEINT * {PPM}) AS rem
  FROM raw_lines l JOIN totals t USING (country, product)
  LEFT JOIN pools p USING (country, product)
),
ranked AS (
  SELECT *,
         pool - sum(fl) OVER (PARTITION BY country, product) AS leftover,
         row_number() OVER (PARTITION BY country, product ORDER BY rem DESC, rightsholder_id, track_id) AS rk
  FROM exact
)
{_final(kind)}
"""


def _final(kind: str) -> str:
    if kind == "statement":
        return """SELECT country, product, rightsholder_id, track_id, streams::BIGINT AS streams,
       (fl + CASE WHEN rk <= leftover THEN 1 ELSE 0 END)::BIGINT AS amount_micros
FROM ranked
ORDER BY country, product, rightsholder_id, track_id"""
    if kind == "plays":
        return """SELECT pp.play_id, pp.user_id, pp.track_id, m.canon, pp.country, pp.product, pp.context_uri,
       pp.pt AS play_time_ms, pp.day, pp.ms, pp.skipped, (s.play_id IS NOT NULL) AS is_stream
FROM pp LEFT JOIN tmap m ON m.track_id = pp.track_id LEFT JOIN streams s ON s.play_id = pp.play_id
ORDER BY pp.play_id"""
    raise ValueError(f"unknown kind {kind!r}")


PLAY_COLUMNS = ("play_id", "user_id", "track_id", "canon", "country", "product", "context_uri", "play_time_ms",
                "day", "ms", "skipped", "is_stream")


# -- sources ------------------------------------------------------------------------------------
def _connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def parquet_view_sql(path: Path, present: Iterable[str] | None = None) -> str:
    """SELECT of COLUMNS over an archive directory or one Parquet file. ``present``: the columns the
    files have (an archive written before a field existed lacks its column: it reads as NULL)."""
    glob = str(path / "**" / "*.parquet") if path.is_dir() else str(path)
    have = None if present is None else set(present)
    cols = []
    for name in COLUMNS:
        if have is not None and name not in have:
            cols.append(f"CAST(NULL AS {COLUMNS[name]}) AS {name}")
        elif name in TS_COLUMNS:
            cols.append(f"epoch_ms({name}) AS {name}")
        else:
            cols.append(name)
    return (
        f"SELECT {', '.join(cols)} FROM read_parquet({_sql_str(glob)}, union_by_name = true, "
        f"hive_partitioning = false)"
    )


def codec_table(path: Path, codec: Codec | None = None) -> tuple[pa.Table, int, list[tuple[int, str]]]:
    """Validate every line of a JSON Lines file with the codec; the valid royalty events as Arrow.

    Returns (table of COLUMNS, number of lines read, rejected (line number, reason)).
    """
    codec = codec or default_codec()
    cols: dict[str, list] = {c: [] for c in COLUMNS}
    rejected: list[tuple[int, str]] = []
    relevant = frozenset(ROYALTY_TYPES)
    n = 0
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            n += 1
            try:
                ev = decode_json(codec, parse_json_line(raw))
            except EventError as exc:
                rejected.append((lineno, exc.reason))
                continue
            if ev["type"] not in relevant:
                continue
            reason = client_event_reason(ev)
            if reason:  # a client event the grant rule refuses: bad input, as the live path dead-letters it
                rejected.append((lineno, reason))
                continue
            for c in COLUMNS:
                cols[c].append(ev.get(c))
    arrays = [pa.array(cols[c], type=ARROW_TYPES[t]) for c, t in COLUMNS.items()]
    return pa.Table.from_arrays(arrays, names=list(COLUMNS)), n, rejected


def _json_columns_sql() -> str:
    parts = []
    for name, t in COLUMNS.items():
        parts.append(f"{_sql_str(name)}: {_sql_str('VARCHAR' if name in TS_COLUMNS else t)}")
    for name, t in (("device_id", "VARCHAR"), ("offline", "BOOLEAN"), ("title", "VARCHAR"),
                    ("reason", "VARCHAR"), ("currency", "VARCHAR")):
        parts.append(f"{_sql_str(name)}: {_sql_str(t)}")
    return "{" + ", ".join(parts) + "}"


def _ts_sql(col: str) -> str:
    return f"epoch_ms(CAST({col} AS TIMESTAMPTZ))"


# SQL validity for the royalty-relevant types (mirrors schemas/invariants.py for them).
_VALID_SQL = f"""
  event_id IS NOT NULL AND event_id <> '' AND occurred_at IS NOT NULL
  AND CASE
    WHEN type IN {_PLAY_TYPES} THEN
      play_id IS NOT NULL AND user_id IS NOT NULL AND track_id IS NOT NULL
      AND coalesce(regexp_full_match(country, '[A-Z]{{2}}'), false) AND product IN {_PRODUCTS}
      AND CASE WHEN type = {_STARTED} THEN device_id IS NOT NULL AND offline IS NOT NULL
               ELSE ms_played IS NOT NULL AND ms_played >= 0 END
    WHEN type = 'track.ingested' THEN
      track_id IS NOT NULL AND isrc IS NOT NULL AND rightsholders IS NOT NULL AND len(rightsholders) > 0
      AND list_sum(list_transform(rightsholders, lambda x: x.share_ppm::BIGINT)) = {PPM}
      AND list_bool_and(list_transform(rightsholders, lambda x: x.share_ppm IS NOT NULL AND x.share_ppm >= 0
                                                        AND x.rightsholder_id IS NOT NULL))
      AND len(list_distinct(list_transform(rightsholders, lambda x: x.rightsholder_id))) = len(rightsholders)
    WHEN type = 'rights.changed' THEN
      track_id IS NOT NULL AND allowed IS NOT NULL AND coalesce(regexp_full_match(territory, '[A-Z]{{2}}'), false)
      AND (valid_from IS NULL OR valid_to IS NULL OR valid_to >= valid_from)
    WHEN type = 'track.taken_down' THEN
      track_id IS NOT NULL AND territories IS NOT NULL AND len(territories) > 0 AND reason IS NOT NULL
      AND list_bool_and(list_transform(territories, lambda x: x = {_EVERYWHERE} OR coalesce(regexp_full_match(x, '[A-Z]{{2}}'), false)))
    WHEN type = 'royalty.pool_declared' THEN
      coalesce(regexp_full_match(period, '\\d{{4}}-(0[1-9]|1[0-2])'), false)
      AND coalesce(regexp_full_match(country, '[A-Z]{{2}}'), false) AND product IN {_PRODUCTS}
      AND amount_micros IS NOT NULL AND amount_micros >= 0 AND currency IS NOT NULL
    ELSE false END
"""


def jsonl_view_sql(path: Path) -> str:
    """SELECT of COLUMNS straight from a JSON Lines file with DuckDB's reader + SQL validity."""
    cols = [(_ts_sql(c) + f" AS {c}") if c in TS_COLUMNS else c for c in COLUMNS]
    types = ", ".join(_sql_str(t) for t in ROYALTY_TYPES)
    src = (
        f"read_json({_sql_str(str(path))}, format = 'newline_delimited', columns = {_json_columns_sql()})"
    )
    inner = ", ".join(
        [c for c in COLUMNS if c not in TS_COLUMNS]
        + [f"{_ts_sql(c)} AS {c}" for c in TS_COLUMNS]
        + ["device_id", "offline", "reason", "currency"]
    )
    del cols
    return (
        f"SELECT {', '.join(COLUMNS)} FROM (SELECT {inner} FROM {src} WHERE type IN ({types})) "
        f"WHERE {_VALID_SQL}"
    )


def compute_from_path(
    path: Path | str, period: str, *, validate: str = "codec", threads: int | None = None
) -> list[StatementLine]:
    """The royalty statement of ``period`` from an archive dir, a Parquet file or a .jsonl file."""
    return compute(path, period, validate=validate, threads=threads).lines


def compute(
    path: Path | str, period: str, *, validate: str = "codec", threads: int | None = None
) -> SqlResult:
    """Like :func:`compute_from_path`, with the number of events read and the rejected lines."""
    path = Path(path)
    lo, hi = period_bounds(period)
    if validate not in ("codec", "sql"):
        raise SqlEngineError(f"validate must be 'codec' or 'sql', got {validate!r}")
    if not path.exists():
        raise SqlEngineError(f"{path}: no such file or directory")
    con = _connect(threads)
    result = SqlResult(lines=[])
    try:
        if path.is_dir() or path.suffix == ".parquet":
            if path.is_dir() and not any(path.rglob("*.parquet")):
                raise SqlEngineError(f"{path}: no Parquet files under it (is it an archive directory?)")
            glob = str(path / "**" / "*.parquet") if path.is_dir() else str(path)
            present = [r[0] for r in con.execute(
                f"DESCRIBE SELECT * FROM read_parquet({_sql_str(glob)}, union_by_name = true, "
                f"hive_partitioning = false)").fetchall()]
            con.execute(f"CREATE VIEW ev AS {parquet_view_sql(path, present)}")
        elif validate == "codec":
            table, n, rejected = codec_table(path)
            result.events_read, result.rejected = n, rejected
            con.register("ev", table)
        else:
            con.execute(f"CREATE VIEW ev AS {jsonl_view_sql(path)}")
        rows = con.execute(statement_sql(lo, hi)).fetchall()
    except duckdb.Error as exc:
        raise SqlEngineError(f"{path}: cannot compute the statement: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    result.lines = [StatementLine(period, c, p, rh, t, int(s), int(a)) for c, p, rh, t, s, a in rows]
    return result


def compute_from_relation(con: duckdb.DuckDBPyConnection, period: str) -> list[StatementLine]:
    """The statement over a view/table ``ev`` (COLUMNS) already present in ``con``."""
    lo, hi = period_bounds(period)
    rows = con.execute(statement_sql(lo, hi)).fetchall()
    return [StatementLine(period, c, p, rh, t, int(s), int(a)) for c, p, rh, t, s, a in rows]
