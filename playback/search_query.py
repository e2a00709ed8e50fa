"""Spotify search field filters in ``q``: a pure parser (no index, no I/O).

``q`` is free text with field filters mixed in, as the Spotify Web API documents them:
``artist:``, ``album:``, ``track:``, ``genre:``, ``isrc:``, ``year:`` (``year:1999`` or a range
``year:1990-1999``). A value is either one word (up to the next space) or a double-quoted phrase
(``artist:"Daft Punk"``; an unclosed quote runs to the end). Field names are case-insensitive; the
same field given twice must match both values. A ``word:`` that is not one of these fields stays free
text, and so does everything else (quotes around free text only group it). A malformed year (not
``YYYY`` or ``YYYY-YYYY``, or a range whose start is after its end) is a :class:`ValueError`.

Which filter applies to which type (Spotify's table): ``artist`` and ``year`` to albums, artists and
tracks (an artist has no year here: ignored for artists), ``album`` to albums and tracks, ``genre``
to artists and tracks, ``track`` and ``isrc`` to tracks. A filter that does not apply to a type is
ignored when searching that type (:meth:`ParsedQuery.filters_for`); when nothing is left (no free
text, no filter that applies) that type has no results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TEXT_FILTERS = ("artist", "album", "track", "genre")
FILTERS = (*TEXT_FILTERS, "isrc", "year")
APPLIES: dict[str, frozenset[str]] = {
    "track": frozenset({"artist", "album", "track", "genre", "isrc", "year"}),
    "album": frozenset({"artist", "album", "year"}),
    "artist": frozenset({"artist", "genre"}),
}
_FILTER_RE = re.compile(r'(?i)(?<!\S)(' + "|".join(FILTERS) + r'):(?:"([^"]*)"?|(\S*))')
_YEAR_RE = re.compile(r"(\d{4})(?:-(\d{4}))?")


@dataclass(frozen=True)
class ParsedQuery:
    """Free ``text`` and the filters: ``fields`` (name -> values, in order), ``years`` (inclusive)."""

    text: str
    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    years: tuple[int, int] | None = None

    def filters_for(self, kind: str) -> tuple[dict[str, tuple[str, ...]], tuple[int, int] | None]:
        """The text filters and year range that apply to ``kind`` (see the module docstring)."""
        applies = APPLIES[kind]
        fields = {k: v for k, v in self.fields.items() if k in applies}
        return fields, self.years if "year" in applies else None

    @property
    def has_filters(self) -> bool:
        return bool(self.fields) or self.years is not None


def parse_year(value: str) -> tuple[int, int]:
    """``1999`` -> (1999, 1999); ``1990-1999`` -> (1990, 1999); ValueError otherwise."""
    m = _YEAR_RE.fullmatch(value.strip())
    if m is None:
        raise ValueError(f"Invalid year filter {value[:40]!r}: expected YYYY or YYYY-YYYY")
    lo = int(m.group(1))
    hi = int(m.group(2) or lo)
    if lo > hi:
        raise ValueError(f"Invalid year filter {value[:40]!r}: the range starts after it ends")
    return lo, hi


def parse_query(q: str) -> ParsedQuery:
    """Split ``q`` into free text and field filters (see the module docstring)."""
    fields: dict[str, list[str]] = {}
    years: tuple[int, int] | None = None
    rest: list[str] = []
    pos = 0
    for m in _FILTER_RE.finditer(q):
        rest.append(q[pos:m.start()])
        pos = m.end()
        name = m.group(1).lower()
        value = (m.group(2) if m.group(2) is not None else m.group(3) or "").strip()
        if not value:
            continue  # "artist:" with nothing after it filters nothing
        if name == "year":
            lo, hi = parse_year(value)
            years = (lo, hi) if years is None else (max(years[0], lo), min(years[1], hi))
        else:
            fields.setdefault(name, []).append(value)
    rest.append(q[pos:])
    text = " ".join(" ".join(rest).split())
    return ParsedQuery(text, {k: tuple(v) for k, v in fields.items()}, years)
