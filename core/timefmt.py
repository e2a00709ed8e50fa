"""Event-time conversions: RFC 3339 UTC strings <-> integer epoch milliseconds.

Inside playlog every timestamp is an ``int`` of milliseconds since the Unix epoch (UTC), the
value Avro's ``timestamp-millis`` carries; the JSON Lines form uses RFC 3339 strings.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def parse_ts(text: str) -> int:
    """Parse an RFC 3339 timestamp with an explicit offset into epoch milliseconds.

    Raises ValueError for anything else (no offset, not a date, not a string).
    """
    if not isinstance(text, str):
        raise ValueError(f"timestamp must be an RFC 3339 string, got {type(text).__name__}")
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}") from None
    if dt.tzinfo is None:
        raise ValueError(f"timestamp has no UTC offset: {text!r}")
    return (dt - _EPOCH) // _MS


def format_ts(ms: int) -> str:
    """Epoch milliseconds -> ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    dt = _EPOCH + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def period_of(ms: int) -> str:
    """UTC ``YYYY-MM`` of an epoch-millisecond instant."""
    return (_EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m")


def day_of(ms: int) -> int:
    """UTC day number (days since the epoch) of an epoch-millisecond instant."""
    return ms // 86_400_000
