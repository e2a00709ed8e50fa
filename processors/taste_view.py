"""The per-user taste view: one fold of a user's listening events into everything the API reads about
them (the ``view.taste`` document), shared by the worker's taste stage (worker/taste_stage.py) and
the API's read-your-writes overlay.

State (key ``user_id``; kept on the compacted ``taste.state`` topic by the stage)::

    {"user_id": str,
     "offset": int | None,        # the last listening offset folded (a user's events share one partition)
     "profile": <processors.taste profile>,          # decayed artist/genre affinities + history
     "listened": [track_id, ...],                     # processors.taste.evolve_listener's set (bounded)
     "plays": [[track_id, play], ...]}                # latest play per track, most recent last (bounded)

``play`` is ``{"play_id", "issued_ms", "ms_played", "completed"}`` (:func:`note_play`): the play a
Subsonic scrobble reports on, whichever API process started it.

:func:`to_view` is the published document: the state without the bookkeeping the API never reads
(``offset`` and the profile's dedupe window ``seen``), so an API replica holds a bounded document per
user whatever the length of their history.

Redelivery. The stage commits listening offsets only after the states are acknowledged; a batch read
again after a crash carries offsets at or below ``offset`` and is skipped (:func:`evolve` with
``offset``), so a state counts each record once. Client duplicates (the same play event sent twice)
are absorbed by the profile's signal ids (``taste.evolve``) and by the play's max/or merge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from processors import taste
from processors.grants import parse_grant
from processors.rules import PLAY_COMPLETED, PLAY_TYPES

State = dict[str, Any]
# track id -> (canonical id, artist ids, genres); None when the catalog does not know the track (yet)
TrackInfo = Callable[[str], tuple[str, list[str], list[str]] | None]

PLAYS_PER_USER = 200


def new_state(user_id: str) -> State:
    return {"user_id": user_id, "offset": None, "profile": taste.new_profile(user_id), "listened": [],
            "plays": []}


def note_play(plays: Mapping[str, dict], event: Mapping[str, Any], canonical_id: str,
              cap: int = PLAYS_PER_USER) -> dict[str, dict] | None:
    """``plays`` (track -> latest play, most recent last) with the event's play folded in; None when the
    event changes nothing (no well-formed play id, or an older play of the track)."""
    claims = parse_grant(event.get("play_id"))
    if claims is None:
        return None
    play = plays.get(canonical_id)
    if play is None or play["play_id"] != event["play_id"]:
        if play is not None and play["issued_ms"] > claims.issued_ms:
            return None  # an older play of the track: the latest one is what a scrobble reports on
        play = {"play_id": event["play_id"], "issued_ms": claims.issued_ms, "ms_played": 0, "completed": False}
    new_play = {**play, "completed": play["completed"] or event["type"] == PLAY_COMPLETED,
                "ms_played": max(play["ms_played"], event.get("ms_played") or 0)}
    out = dict(plays)
    if out.get(canonical_id) == new_play and next(reversed(out)) == canonical_id:
        return None
    out.pop(canonical_id, None)
    out[canonical_id] = new_play
    while len(out) > cap:
        del out[next(iter(out))]
    return out


def evolve(state: State | None, event: Mapping[str, Any], info: TrackInfo,
           offset: int | None = None) -> tuple[State | None, str | None]:
    """Fold one listening event. Returns (new state, dead-letter reason or None); the state is returned
    unchanged (the same object) when the event changes nothing or was folded already (``offset``)."""
    etype = event.get("type")
    if etype not in PLAY_TYPES:
        return state, f"not a listening event: {etype!r}"
    user_id = event["user_id"]
    if state is not None and state["user_id"] != user_id:
        return state, f"event for {user_id!r} reached the taste state of {state['user_id']!r}"
    if state is not None and offset is not None and state["offset"] is not None and offset <= state["offset"]:
        return state, None
    before = state
    state = state or new_state(user_id)
    known = info(event["track_id"])
    canon, artists, genres = known if known is not None else (event["track_id"], [], [])
    profile, listened = state["profile"], {"user_id": user_id, "tracks": state["listened"]}
    for signal in taste.signals_from_play_event({**event, "track_id": canon}, artists, genres):
        profile, _ = taste.evolve(profile, signal)
        listened, _ = taste.evolve_listener(listened, signal)
    plays = dict(state["plays"])
    noted = note_play(plays, event, canon)
    new = {"user_id": user_id, "offset": offset if offset is not None else state["offset"], "profile": profile,
           "listened": listened["tracks"], "plays": [[t, p] for t, p in (noted or plays).items()]}
    if before is not None and {**new, "offset": None} == {**before, "offset": None}:
        return before, None  # nothing changed: no need to store (a repeat changes nothing either)
    return new, None


def to_view(state: Mapping[str, Any]) -> dict[str, Any]:
    """The ``view.taste`` document of a state."""
    profile = {k: v for k, v in state["profile"].items() if k != "seen"}
    return {"user_id": state["user_id"], "profile": profile, "listened": list(state["listened"]),
            "plays": [list(p) for p in state["plays"]]}
