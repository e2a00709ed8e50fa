"""``playlog bench featurestore``: the feature store's SQL (batch/recs_sql.py) on DuckDB, timed on
synthetic ``plays`` tables of growing size, to put numbers on the self-join that item-item costs.

Each listener streams ``d`` distinct tracks drawn with a skewed popularity (``floor(T * u^3)``: a
few tracks are streamed by many), so the pair rows of the self-join are ``sum_u d_u^2`` (minus
repeats). The tables are built in DuckDB itself (``setseed``: the same data for the same options)
in memory; the timing covers the two queries only (neighbours top 50 per track, popularity).
"""

from __future__ import annotations

import time

from batch.recs_sql import popularity_sql, similar_sql
from sinks.duckdb_sink import DERIVED_DDL

AS_OF = 1_780_000_000_000
DAY_MS = 86_400_000


def run_one(users: int, per_user: int, tracks: int, threads: int | None = None) -> dict:
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute("SET enable_progress_bar = false")
    con.execute(DERIVED_DDL.replace(", PRIMARY KEY (play_id)", ""))  # no index: a faster bulk insert
    con.execute("SELECT setseed(0.42)")
    con.execute(f"""
        INSERT INTO plays (period, play_id, user_id, track_id, canon, country, product, context_uri,
                           play_time_ms, day, ms, skipped, is_stream)
        SELECT '2026-05', 'p' || i, 'u' || (i // {per_user}), 't' || t, 't' || t,
               ['SE', 'DE', 'US', 'BR'][1 + (i % 4)], 'premium', NULL,
               {AS_OF} - 1 - (i % 60) * {DAY_MS}, DATE '2026-05-01', 60000, false, true
        FROM (SELECT i, CAST(floor({tracks} * pow(random(), 3)) AS BIGINT) AS t FROM range({users * per_user}) r(i))
    """)
    pairs = con.execute("""
        WITH s AS (SELECT DISTINCT user_id, canon AS t FROM plays)
        SELECT sum(d * (d - 1)) FROM (SELECT count(*) AS d FROM s GROUP BY user_id)
    """).fetchall()[0][0]
    t0 = time.perf_counter()
    sim = con.execute(f"SELECT count(*), count(DISTINCT a) FROM ({similar_sql('duckdb', AS_OF, 50)})").fetchall()[0]
    t1 = time.perf_counter()
    pop = con.execute(f"SELECT count(DISTINCT t) FROM ({popularity_sql('duckdb', AS_OF, 28)})").fetchall()[0][0]
    t2 = time.perf_counter()
    con.close()
    return {"users": users, "plays": users * per_user, "pair_rows": int(pairs or 0), "neighbour_rows": sim[0],
            "tracks_with_neighbours": sim[1], "tracks_with_streams": pop,
            "similar_s": round(t1 - t0, 3), "popularity_s": round(t2 - t1, 3)}
