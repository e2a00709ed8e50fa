"""The royalty statement line and its CSV form (spec/royalties.md, "Statement file").

Shared by the live royalty view, every replay engine and the sinks, so all of them write the
same bytes for the same lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

HEADER = "period,country,product,rightsholder_id,track_id,streams,amount_micros"


class StatementLine(NamedTuple):
    period: str
    country: str
    product: str
    rightsholder_id: str
    track_id: str  # the canonical track id
    streams: int
    amount_micros: int


def sort_lines(lines: Iterable[StatementLine]) -> list[StatementLine]:
    """Rows in statement order (period, country, product, rightsholder_id, track_id)."""
    return sorted(lines, key=lambda r: (r.period, r.country, r.product, r.rightsholder_id, r.track_id))


def to_csv(lines: Iterable[StatementLine]) -> str:
    """The statement file's text: header, sorted rows with streams > 0, ``\\n`` endings."""
    out = [HEADER]
    for r in sort_lines(lines):
        if r.streams > 0:
            out.append(
                f"{r.period},{r.country},{r.product},{r.rightsholder_id},{r.track_id},{r.streams},{r.amount_micros}"
            )
    return "\n".join(out) + "\n"


def write_csv(lines: Iterable[StatementLine], path: str | Path) -> None:
    Path(path).write_bytes(to_csv(lines).encode("utf-8"))


def parse_csv(text: str) -> list[StatementLine]:
    """Lines of a statement file (the inverse of :func:`to_csv`)."""
    rows = text.splitlines()
    if not rows or rows[0] != HEADER:
        raise ValueError("not a royalty statement: the header line differs")
    out = []
    for i, row in enumerate(rows[1:], start=2):
        parts = row.split(",")
        if len(parts) != 7:
            raise ValueError(f"line {i}: expected 7 columns, got {len(parts)}")
        out.append(StatementLine(*parts[:5], int(parts[5]), int(parts[6])))
    return out
