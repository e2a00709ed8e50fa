"""The analyst queries (``sinks/sql/<dialect>/<name>.sql``) and a runner for each warehouse.

Each query exists once per dialect (DuckDB, ClickHouse 18.16+) with the same output columns and
order, so both warehouses give the same answer (tests/integration/test_clickhouse_queries.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SQL_DIR = Path(__file__).resolve().parent / "sql"
DIALECTS = ("duckdb", "clickhouse")


def query_names() -> list[str]:
    return sorted(p.stem for p in (SQL_DIR / "duckdb").glob("*.sql"))


def query_text(name: str, dialect: str) -> str:
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r} (expected one of {', '.join(DIALECTS)})")
    path = SQL_DIR / dialect / f"{name}.sql"
    if not path.exists():
        raise ValueError(f"unknown query {name!r} (known: {', '.join(query_names())})")
    return path.read_text()


def run_duckdb(con: Any, name: str) -> list[tuple]:
    """Rows of a query on a DuckDB warehouse connection."""
    return [tuple(r) for r in con.execute(query_text(name, "duckdb")).fetchall()]


def run_clickhouse(client: Any, db: str, name: str) -> list[tuple]:
    """Rows of a query on ClickHouse (tables of database ``db``)."""
    sql = query_text(name, "clickhouse")
    client.execute(f"USE {db}")
    return [tuple(r) for r in client.execute(sql)]
