"""The replay ``fold`` engine: the very same fold the live royalty view runs, fed from any source."""

from __future__ import annotations

from collections.abc import Iterable

from processors.royalties import HANDLED_TYPES, RoyaltyState, fold, statement
from processors.statement import StatementLine

#: the event types the royalty statement depends on (sources may pass over the rest)
ROYALTY_TYPES = HANDLED_TYPES


def compute(events: Iterable[dict], period: str) -> list[StatementLine]:
    """Statement lines of ``period`` from (valid, in-memory) events in any order."""
    return statement(fold(events, RoyaltyState()), period)
