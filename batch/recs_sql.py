"""The feature store's SQL: item-item cosine neighbours and stream counts, in two dialects side by side.

Both read the warehouse's ``plays`` table (one row per play: its user, its canonical track
``canon`` -- ``track_id`` when the catalog does not know it --, ``play_time_ms`` and ``ms``, the most
it played), as the DuckDB warehouse derives it and the ClickHouse sink publishes it (sinks/). A
*stream* is a play of at least ``MIN_STREAM_MS`` (processors/rules.py); only plays before ``as_of``
count, so a run is a function of the log and ``as_of``.

Similarity (the SQL twin of processors/recs/similarity.py, checked against it in
tests/unit/test_batch_recs.py): over the distinct (listener, track) pairs streamed, ``n_t`` distinct
listeners per track and ``c`` listeners of both tracks of a pair give ``score = c / sqrt(n_a n_b)``.
The neighbours of ``a`` are ordered by the exact rational ``c^2 / n_b`` (``n_a`` is common to them),
written as its integer part ``intdiv(c^2, n_b)`` then its fraction ``(c^2 mod n_b) / n_b`` as a
double: equal rationals give equal keys (one correctly rounded division of the same value), and two
different fractions ``r/n`` and ``r'/n'`` differ by at least ``1/(n n')``, which a double tells apart
while ``n n' < 2^52``, i.e. for tracks of fewer than 67 million listeners each. Ties go to the smaller
track id (byte order, which is code point order, as in Python). The top ``k`` per track are kept
(``QUALIFY row_number()`` in DuckDB; ``LIMIT k BY`` in ClickHouse, which has no window functions
in the 18.16 server the tests run on, nor ``WITH`` subqueries).

Popularity: per (track, country), the streams before ``as_of`` (``total``) and those in the window
``[as_of - days, as_of)`` (``recent``).
"""

from __future__ import annotations

from processors.rules import DAY_MS, MIN_STREAM_MS

DIALECTS = ("duckdb", "clickhouse")


def _check(as_of: int, k: int = 1, days: int = 1) -> None:
    for name, v in (("as_of", as_of), ("k", k), ("days", days)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if k < 1 or days < 1:
        raise ValueError("k and days must be at least 1")


def similar_sql(dialect: str, as_of: int, k: int = 50) -> str:
    """(a, b, score) rows: the top ``k`` neighbours ``b`` of every streamed track ``a``, best first
    (ordered by a, then rank)."""
    _check(as_of, k)
    if dialect == "duckdb":
        return f"""
WITH s AS (
  SELECT DISTINCT user_id, coalesce(canon, track_id) AS t FROM plays
  WHERE ms >= {MIN_STREAM_MS} AND play_time_ms < {as_of} AND user_id IS NOT NULL
    AND coalesce(canon, track_id) IS NOT NULL
),
n AS (SELECT t, count(*) AS n FROM s GROUP BY t),
pairs AS (
  SELECT x.t AS a, y.t AS b, count(*) AS c FROM s x JOIN s y ON x.user_id = y.user_id AND x.t <> y.t
  GROUP BY x.t, y.t
),
scored AS (
  SELECT p.a, p.b, p.c / sqrt(na.n * nb.n) AS score,
         (p.c * p.c) // nb.n AS q, ((p.c * p.c) % nb.n) / nb.n AS f
  FROM pairs p JOIN n na ON na.t = p.a JOIN n nb ON nb.t = p.b
)
SELECT a, b, score FROM scored
QUALIFY row_number() OVER (PARTITION BY a ORDER BY q DESC, f DESC, b) <= {k}
ORDER BY a, q DESC, f DESC, b
"""
    if dialect == "clickhouse":
        s = (f"SELECT DISTINCT user_id, ifNull(canon, track_id) AS t FROM plays FINAL "
             f"WHERE ms >= {MIN_STREAM_MS} AND play_time_ms < {as_of}")
        return f"""
SELECT a, b, c / sqrt(na * nb) AS score
FROM (
  SELECT a, b, c, na, nb FROM (
    SELECT a, b, c, na FROM (
      SELECT a, b, count() AS c FROM (SELECT user_id, t AS a FROM ({s})) AS x
      ALL INNER JOIN (SELECT user_id, t AS b FROM ({s})) AS y USING user_id
      WHERE a != b
      GROUP BY a, b
    ) AS p ALL INNER JOIN (SELECT t AS a, count() AS na FROM ({s}) GROUP BY t) AS ca USING a
  ) AS pa ALL INNER JOIN (SELECT t AS b, count() AS nb FROM ({s}) GROUP BY t) AS cb USING b
) AS scored
ORDER BY a, intDiv(c * c, nb) DESC, (c * c % nb) / nb DESC, b
LIMIT {k} BY a
"""
    raise ValueError(f"unknown dialect {dialect!r} (expected one of {', '.join(DIALECTS)})")


def popularity_sql(dialect: str, as_of: int, days: int = 28) -> str:
    """(track, country, total, recent) rows, ordered by track then country; ``country`` may be NULL
    in DuckDB (a play whose start carried none)."""
    _check(as_of, days=days)
    lo = as_of - days * DAY_MS
    if dialect == "duckdb":
        return f"""
SELECT t, country, count(*) AS total, count(*) FILTER (WHERE play_time_ms >= {lo}) AS recent
FROM (
  SELECT coalesce(canon, track_id) AS t, country, play_time_ms FROM plays
  WHERE ms >= {MIN_STREAM_MS} AND play_time_ms < {as_of} AND coalesce(canon, track_id) IS NOT NULL
)
GROUP BY t, country
ORDER BY t, country NULLS FIRST
"""
    if dialect == "clickhouse":
        return f"""
SELECT t, country, count() AS total, countIf(play_time_ms >= {lo}) AS recent
FROM (
  SELECT ifNull(canon, track_id) AS t, country, play_time_ms FROM plays FINAL
  WHERE ms >= {MIN_STREAM_MS} AND play_time_ms < {as_of}
) AS s
GROUP BY t, country
ORDER BY t, country
"""
    raise ValueError(f"unknown dialect {dialect!r} (expected one of {', '.join(DIALECTS)})")
