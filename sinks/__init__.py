"""Sinks: the Parquet archive, the DuckDB warehouse and ClickHouse, each idempotent."""
