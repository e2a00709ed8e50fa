"""The Parquet archive sink: every event topic, partitioned by topic and event date.

Layout and schema: :mod:`sinks.archive_schema`. A flush writes, per (topic, partition, event
date), one file named by the offset range it holds; the file is written to a temporary name,
fsynced and renamed, so a reader never sees half a file.

Idempotence: a batch that is re-delivered after a crash (flushed, not committed) may come back
with different boundaries. Before writing the files of a (topic, partition) offset range, every
existing file of that topic-partition whose range overlaps it is read; its rows outside the new
range are kept (rewritten under their own range), its rows inside are replaced. So a rerun leaves
each offset in exactly one file: no duplicate, no gap.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sinks.archive_schema import (
    CONVERSION_ERRORS,
    archive_schema,
    file_path,
    records_to_table,
    unwritable,
    utc_date,
)
from sinks.base import Record

log = logging.getLogger(__name__)
_NAME = re.compile(r"^(?P<topic>.+)-(?P<partition>\d+)-(?P<first>\d+)-(?P<last>\d+)\.parquet$")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_table_atomic(table: pa.Table, path: Path) -> None:
    """Write a Parquet file via a temporary name + fsync + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class ParquetArchive:
    """Sink writing the archive under ``root`` (see module doc)."""

    name = "parquet"
    #: errors of a flush that a value caused (the runner isolates the record, sinks/runner.py)
    data_errors = CONVERSION_ERRORS

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.schema = archive_schema()
        self._pending: list[Record] = []
        self.files_written = 0

    def write(self, batch: list[Record]) -> None:
        self._pending.extend(batch)

    def reject(self, batch: list[Record]) -> list[tuple[int, str]]:
        """``(index, why)`` of the records no archive row can hold (the runner dead-letters them)."""
        return unwritable(batch, self.schema)

    def discard(self) -> None:
        """Forget what was written since the last flush (after a flush that failed)."""
        self._pending.clear()

    # -- files of a topic-partition ------------------------------------------------------------
    def _existing(self, topic: str, partition: int) -> list[tuple[int, int, Path]]:
        out = []
        tdir = self.root / f"topic={topic}"
        if not tdir.is_dir():
            return out
        for p in tdir.glob(f"date=*/{topic}-{partition}-*-*.parquet"):
            m = _NAME.match(p.name)
            if m and m["topic"] == topic and int(m["partition"]) == partition:
                out.append((int(m["first"]), int(m["last"]), p))
        return out

    def _write_groups(self, topic: str, partition: int, table: pa.Table) -> list[Path]:
        """Write a table of one topic-partition as one file per event date."""
        written = []
        if table.num_rows == 0:
            return written
        dates = pc.strftime(table.column("occurred_at"), format="%Y-%m-%d")
        for date in sorted(set(dates.to_pylist())):
            part = table.filter(pc.equal(dates, date)).sort_by("offset")
            offs = part.column("offset")
            first, last = pc.min(offs).as_py(), pc.max(offs).as_py()
            path = file_path(self.root, topic, date, partition, first, last)
            write_table_atomic(part, path)
            written.append(path)
        return written

    def flush(self) -> None:
        if not self._pending:
            return
        by_tp: dict[tuple[str, int], list[Record]] = {}
        for rec in self._pending:
            by_tp.setdefault((rec[0], rec[1]), []).append(rec)
        for (topic, partition), recs in sorted(by_tp.items()):
            # one copy per offset (a batch can carry a record twice after a rebalance)
            uniq = {r[2]: r for r in recs}
            table = records_to_table(sorted(uniq.values(), key=lambda r: r[2]), self.schema)
            lo, hi = min(uniq), max(uniq)
            overlapping = [(f, la, p) for f, la, p in self._existing(topic, partition) if f <= hi and la >= lo]
            keep: list[pa.Table] = []
            for _, _, p in overlapping:
                old = pq.read_table(p, schema=self.schema)
                offs = old.column("offset")
                outside = old.filter(pc.or_(pc.less(offs, lo), pc.greater(offs, hi)))
                if outside.num_rows:
                    keep.append(outside)
            new_paths = set(self._write_groups(topic, partition, table))
            for t in keep:
                new_paths |= set(self._write_groups(topic, partition, t))
            for _, _, p in overlapping:
                if p not in new_paths:
                    p.unlink(missing_ok=True)
                    log.info("archive: replaced %s", p)
            self.files_written += len(new_paths)
        self._pending.clear()

    def close(self) -> None:
        self._pending.clear()


def archive_files(root: Path | str) -> list[Path]:
    return sorted(Path(root).rglob("*.parquet"))


def date_of(ms: int) -> str:
    return utc_date(ms)
