"""The replay ``fold`` engine: the very same functions the live royalty view runs, fed from any source.

``royalties.fold`` assembles plays per batch with ``plays.summaries_of`` (the live plays stage's step)
and merges them with ``royalties.apply_play_summary`` (the live royalty agent's step); the sources
(replay/sources.py) decode and validate with schemas/validate.py, as the live path does.

The trust rules come with those functions: another user's events on a play count nowhere, and a
client event (one the API stamped with ``received_at``) whose play grant or times break the
client-event rule (processors/grants.py) takes no part, judged by its own stamp, never by the
replay's clock, so a replay months later gives the live statement.
"""

from __future__ import annotations

from collections.abc import Iterable

from processors.royalties import RoyaltyState, fold, statement
from processors.rules import ROYALTY_TYPES
from processors.statement import StatementLine

__all__ = ["ROYALTY_TYPES", "compute"]


def compute(events: Iterable[dict], period: str) -> list[StatementLine]:
    """Statement lines of ``period`` from (valid, in-memory) events in any order."""
    return statement(fold(events, RoyaltyState()), period)
