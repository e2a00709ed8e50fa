"""Rules and their constants, each defined once (spec/royalties.md, spec/events.md, the tiers).

Everything that decides plays, streams or playback by rule takes its numbers and event-type families
from here: the folds (processors/plays.py, royalties.py, rights.py, taste.py), the DuckDB replay
engine (replay/sql_engine.py formats them into its SQL), the sinks, the playback API and the demo.
``PPM`` and ``EVERYWHERE`` are the validation layer's own (schemas/invariants.py), re-exported.
ISRC canonicalization lives in one place too: :class:`processors.catalog.CatalogIndex`, which the
royalty fold holds for its catalog.
"""

from __future__ import annotations

from collections.abc import Container

from schemas.invariants import EVERYWHERE, SHARES_TOTAL

# -- event-type families ------------------------------------------------------------------------
PLAY_STARTED = "play.started"
PLAY_PROGRESS = "play.progress"
PLAY_SKIPPED = "play.skipped"
PLAY_COMPLETED = "play.completed"
#: every listening event of a play (events.md "Listening")
PLAY_TYPES = frozenset({PLAY_STARTED, PLAY_PROGRESS, PLAY_SKIPPED, PLAY_COMPLETED})
#: the listening events that carry ``ms_played`` (a play's ms is the largest of theirs)
PLAY_MS_TYPES = frozenset({PLAY_PROGRESS, PLAY_SKIPPED, PLAY_COMPLETED})
#: the listening events that end a play
PLAY_ENDING_TYPES = frozenset({PLAY_SKIPPED, PLAY_COMPLETED})
#: the other events the royalty statement depends on (catalog, rights, takedowns, pools)
ROYALTY_SOURCE_TYPES = frozenset({"track.ingested", "rights.changed", "track.taken_down", "royalty.pool_declared"})
#: every event type the royalty statement depends on
ROYALTY_TYPES = PLAY_TYPES | ROYALTY_SOURCE_TYPES

# -- numbers ------------------------------------------------------------------------------------
DAY_MS = 86_400_000  # one UTC day in ms (the day of a play; the fraud rules' unit)
MIN_STREAM_MS = 30_000  # the 30-second rule: a play is eligible when ms >= this
IMPOSSIBLE_MS = 86_400_000  # impossible listening: more than this per (user, day) and none are streams
LOOP_CAP = 20  # streams per (user, canonical track, day)
PPM = SHARES_TOTAL  # share_ppm of one track's rightsholders sum to this
FREE_MAX_KBPS = 160  # the free tier streams renditions up to this bitrate; premium streams all

# -- client events (DESIGN.md "The trust boundary"; processors/grants.py) ------------------------
# A client event carries ``received_at`` (stamped by the API) and, as play_id, a play grant the
# server issued at ``issued`` (in its payload). It counts only when
#   issued - CLIENT_SKEW_MS <= occurred_at <= received_at + CLIENT_SKEW_MS,
#   issued - CLIENT_SKEW_MS <= received_at  and  received_at - issued <= OFFLINE_LICENCE_MS.
#: clock skew tolerated between the client's clock (occurred_at) and the servers' (issue, receipt):
#: 5 minutes, about what an unsynchronized phone clock drifts; a play reported as happening more
#: than this before its manifest, or after its upload, is back- or future-dated.
CLIENT_SKEW_MS = 5 * 60_000
#: the offline licence window: plays of an issued manifest may be uploaded (with their original
#: occurred_at) up to 30 days after the issue, the usual offline-download renewal period of
#: streaming services; later, the grant has expired. It also bounds back-dating into a closed
#: period to plays whose manifest was really fetched within 30 days before their upload.
OFFLINE_LICENCE_MS = 30 * DAY_MS


# -- rights resolution (rules 3 and 4) ----------------------------------------------------------
def rights_allow(entry: tuple | list | None, t: int) -> bool:
    """Rule 3 given ``entry``, the rights.changed in force at ``t`` (the latest by (occurred_at,
    event_id) with occurred_at <= t for the (canonical track, country)) as ``(occurred_at, event_id,
    allowed, valid_from, valid_to)``, or None when there is none."""
    if entry is None:
        return False
    _, _, allowed, valid_from, valid_to = entry
    return bool(allowed) and (valid_from is None or valid_from <= t) and (valid_to is None or t < valid_to)


def takedown_covers(territories: Container[str], country: str) -> bool:
    """Rule 4: a takedown listing these territories applies in ``country``."""
    return country in territories or EVERYWHERE in territories
