"""The client is not the authority on money: properties of the statement under untrusted input.

Two rules (spec/royalties.md "Plays", DESIGN.md "The trust boundary"):

- **another user's events on a play count nowhere**: a play is the events of its ``play_id`` that
  carry the play's user (the user of its earliest ``play.started``, else of its earliest event);
- **client events are judged by their own stamp**: an event with ``received_at`` (stamped by the API)
  counts only if its ``play_id`` is a server-issued play grant for its user and track, and
  ``issued - skew <= occurred_at <= received_at + skew``, ``received_at - issued <= offline window``.

Generated on the event sets of tests/unit/test_royalties_props.py (a tiny id universe where plays,
aliases, windows, the loop cap and impossible listening collide), the properties are: adding other
users' events (trusted form) and forged, back-dated, unissued or misbound client events never
changes the statement, for the fold, the live batch path (plays stage -> RoyaltyView over any
batching) and the SQL engine on every source form; legitimate client plays count like the same
plays from a trusted producer; and the live path and the replay refuse a forged event with one reason.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.timefmt import parse_ts
from processors import batches, grants
from processors.batches import RawRecord
from processors.royalties import fold, statement
from processors.rules import CLIENT_SKEW_MS, DAY_MS, OFFLINE_LICENCE_MS, PLAY_TYPES
from replay import sql_engine
from schemas.codec import EventError, default_codec
from sinks.archive_schema import records_to_table
from tests.unit.test_royalties import CAT, Events, world
from tests.unit.test_royalties_props import INSTANTS, event_sets, periods_of
from topics.topic_catalog import topic_of

codec = default_codec()
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SQL_SETTINGS = settings(max_examples=30, deadline=None,
                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
USERS = ["u1", "u2", "mx"]
TRACKS = ["t1", "t2", "t1x"]
NONCE = "AAAAAAAAAAAAAAAA"
FAKE_SIG = "s" * 22  # the fold cannot check signatures (no key): only the API does


def grant(user: str, track: str, issued: int, nonce: str = NONCE) -> str:
    """A play grant in the server's format (processors/grants.py); the signature is not checked here."""
    return grants.format_grant(user, track, issued, nonce, FAKE_SIG)


def client(ev: Events, kind: str, play_id: str, user: str, track: str, at: int, ms: int, received: int,
           country: str = "SE", product: str = "premium") -> dict:
    """A client event as the API writes it: the client's fields plus the server's ``received_at``."""
    e = ev.play_event(kind, play_id, user, track, at, ms, country=country, product=product)
    return {**e, "received_at": received}


def strip_stamp(events: list[dict]) -> list[dict]:
    return [{**e, "received_at": None} if e["type"] in PLAY_TYPES else e for e in events]


# -- generators ---------------------------------------------------------------------------------
def _deciding(events: list[dict]) -> dict[str, dict]:
    """play_id -> the deciding event of the play (earliest play.started, else earliest event)."""
    out: dict[str, dict] = {}
    for e in events:
        if e["type"] not in PLAY_TYPES:
            continue
        k = (e["type"] != "play.started", e["occurred_at"], e["event_id"])
        cur = out.get(e["play_id"])
        if cur is None or k < (cur["type"] != "play.started", cur["occurred_at"], cur["event_id"]):
            out[e["play_id"]] = e
    return out


@st.composite
def foreign_events(draw: st.DrawFn, ev: Events, base: list[dict]) -> list[dict]:
    """Trusted-form events of another user on plays that have a ``play.started``, that do not decide
    the play (so the play's user stays who it was): huge ms, other tracks/countries, late starts."""
    started = {pid: d for pid, d in _deciding(base).items() if d["type"] == "play.started"}
    out: list[dict] = []
    if not started:
        return out
    for _ in range(draw(st.integers(1, 6))):
        pid = draw(st.sampled_from(sorted(started)))
        dec = started[pid]
        user = draw(st.sampled_from([u for u in USERS if u != dec["user_id"]]))
        kind = draw(st.sampled_from(["started", "progress", "completed", "skipped"]))
        if kind == "started":  # later than the deciding play.started: it does not decide
            at = dec["occurred_at"] + draw(st.integers(1, 3))
        else:
            at = draw(st.sampled_from(INSTANTS)) + draw(st.integers(-3, 3))
        out.append(ev.play_event(kind, pid, user, draw(st.sampled_from(TRACKS)), at,
                                 draw(st.sampled_from([45_000, 200_000, 43_200_001, 86_400_001])),
                                 country=draw(st.sampled_from(["SE", "DE"])), product="premium"))
    return out


@st.composite
def legit_client_plays(draw: st.DrawFn, ev: Events) -> list[dict]:
    """Client plays the server issued, reported within the window (online and offline uploads)."""
    out: list[dict] = []
    for i in range(draw(st.integers(0, 4))):
        user, track = draw(st.sampled_from(USERS[:2])), draw(st.sampled_from(TRACKS))
        issued = draw(st.sampled_from(INSTANTS)) + draw(st.integers(-2, 2))
        pid = grant(user, track, issued, nonce=f"legit{i:011d}")
        start = issued + draw(st.sampled_from([-CLIENT_SKEW_MS, 0, 1, 60_000]))
        ms = draw(st.sampled_from([29_999, 30_000, 45_000, 180_000]))
        received = draw(st.sampled_from([start + ms, start + ms + DAY_MS, issued + OFFLINE_LICENCE_MS]))
        received = max(received, start + ms - CLIENT_SKEW_MS)
        country = draw(st.sampled_from(["SE", "DE"]))
        out.append(client(ev, "started", pid, user, track, start, 0, received, country))
        out.append(client(ev, "progress", pid, user, track, start + ms // 2, ms // 2, received, country))
        out.append(client(ev, draw(st.sampled_from(["completed", "skipped"])), pid, user, track, start + ms, ms,
                          received, country))
    return out


@st.composite
def forged_client_events(draw: st.DrawFn, ev: Events, targets: list[str]) -> list[dict]:
    """Client events (``received_at`` set) that must count nowhere: unissued play ids (also ids of
    existing plays), grants of another user or track, back-dated / future-dated / too-late uploads."""
    out: list[dict] = []
    for _ in range(draw(st.integers(1, 8))):
        user, track = draw(st.sampled_from(USERS[:2])), draw(st.sampled_from(TRACKS))
        issued = draw(st.sampled_from(INSTANTS))
        at = issued + draw(st.integers(0, 120_000))
        received = at + draw(st.integers(0, 60_000))
        how = draw(st.sampled_from(["unissued", "garbage", "other_user", "other_track", "before_issue",
                                    "after_receipt", "received_before_issue", "too_late", "epoch", "future"]))
        if how == "unissued":
            pid = draw(st.sampled_from(targets or ["p0"]))
        elif how == "garbage":
            pid = draw(st.sampled_from([
                "g1", "g1....", grant(user, track, issued)[:-1], grant(user, track, issued) + "x",
                grant(user, track, issued).replace("g1.", "g2.", 1), "g1.-5." + grant(user, track, issued)[4:],
                grant(user, track, issued).replace(".", ". ", 1),
            ]))
        elif how == "other_user":
            pid = grant(draw(st.sampled_from([u for u in USERS if u != user])), track, issued)
        elif how == "other_track":
            pid = grant(user, draw(st.sampled_from([t for t in TRACKS if t != track] + ["t1 "])), issued)
        else:
            pid = grant(user, track, issued, nonce=draw(st.sampled_from(["forged0000000000", NONCE])))
            if how == "before_issue":
                at = issued - CLIENT_SKEW_MS - draw(st.integers(1, 3))
            elif how == "after_receipt":
                at = received + CLIENT_SKEW_MS + draw(st.integers(1, 3))
            elif how == "received_before_issue":
                received = issued - CLIENT_SKEW_MS - draw(st.integers(1, 3))
                at = received
            elif how == "too_late":
                received = issued + OFFLINE_LICENCE_MS + draw(st.integers(1, 3))
                at = received - 1000
            elif how == "epoch":
                at = parse_ts("1970-01-01T00:00:00Z")
            else:
                at = parse_ts("2099-01-01T00:00:00Z")
        kind = draw(st.sampled_from(["started", "progress", "completed", "skipped"]))
        out.append(client(ev, kind, pid, user, track, at, draw(st.sampled_from([45_000, 200_000])), received,
                          country=draw(st.sampled_from(["SE", "DE"]))))
    return out


@st.composite
def adversarial(draw: st.DrawFn) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    """(base, legit client plays, other users' events, forged client events)."""
    base = draw(event_sets())
    ev = Events()
    ev.n = 10**6  # event ids apart from the base's
    legit = draw(legit_client_plays(ev))
    foreign = draw(foreign_events(ev, base + legit))
    pids = sorted({e["play_id"] for e in base if e["type"] in PLAY_TYPES})  # not the grants: forged ids only
    forged = draw(forged_client_events(ev, pids))
    return base, legit, foreign, forged


def _periods(*sets: list[dict]) -> list[str]:
    return periods_of([e for s in sets for e in s if e["occurred_at"] >= 0 and e["occurred_at"] < 4_000_000_000_000])


# -- the live path (what worker/plays_stage.py and the royalty agent run) -----------------------
def live(events: list[dict], cuts: list[int]) -> tuple[batches.RoyaltyView, list[str], list[str]]:
    """Feed ``events`` in batches through the live steps; returns the view, the reasons the decode step
    (with the client-event hook) dead-letters, and the reasons the royalty view dead-letters."""
    view = batches.RoyaltyView()
    decode_dead: list[str] = []
    view_dead: list[str] = []
    bounds = [0, *sorted(cuts), len(events)]
    offset = 0
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        by_topic: dict[str, list[RawRecord]] = {}
        for e in events[lo:hi]:
            topic = topic_of(e["type"])
            by_topic.setdefault(topic, []).append(RawRecord(topic, 0, offset, codec.encode(e)))
            offset += 1
        packed: list[bytes] = []
        for topic, recs in by_topic.items():
            good, dead = batches.decode_batch(codec, recs)
            decode_dead += [d.reason for d in dead]
            kept = []
            for rec, e in good:  # the one-line hook of decode_batch (grants.check_client_event), applied here
                try:
                    kept.append((rec, grants.check_client_event(e)))
                except EventError as exc:
                    decode_dead.append(exc.reason)
            good = kept
            if topic == "listening":
                facts = [batches.fact_of_summary(s) for s in batches.play_summaries(ev for _, ev in good)]
            else:
                facts = [batches.fact_of_event(codec, ev) for _, ev in good if ev["type"] in batches.ROYALTY_EVENT_TYPES]
            packed += batches.pack_facts(facts, per_record=7)
        items = [(k, raw, ("royalty.inputs", n)) for n, rec in enumerate(packed) for k, raw in batches.unpack_facts(rec)]
        _store, bad = view.apply_batch(items)
        view_dead += [reason for _, reason in bad]
    return view, decode_dead, view_dead


# -- properties ---------------------------------------------------------------------------------
@SETTINGS
@given(sets=adversarial(), data=st.data())
def test_fold_other_users_and_forged_client_events_change_nothing(sets, data: st.DataObject) -> None:
    base, legit, foreign, forged = sets
    honest = base + legit
    mixed = data.draw(st.permutations(honest + foreign + forged))
    dups = data.draw(st.lists(st.sampled_from(mixed), max_size=5))
    expected, got = fold(honest), fold(list(mixed) + dups)
    for period in _periods(honest, foreign, forged):
        assert statement(got, period) == statement(expected, period), period


@SETTINGS
@given(sets=adversarial())
def test_legit_client_plays_count_like_trusted_ones(sets) -> None:
    base, legit, _, _ = sets
    assert all(grants.client_event_reason(e) is None for e in legit)
    stamped, trusted = fold(base + legit), fold(base + strip_stamp(legit))
    for period in _periods(base, legit):
        assert statement(stamped, period) == statement(trusted, period), period


@SETTINGS
@given(sets=adversarial(), data=st.data())
def test_live_path_over_any_batching_equals_the_honest_fold(sets, data: st.DataObject) -> None:
    base, legit, foreign, forged = sets
    honest = base + legit
    events = list(data.draw(st.permutations(honest + foreign + forged)))
    cuts = data.draw(st.lists(st.integers(0, len(events)), max_size=6))
    view, decode_dead, view_dead = live(events, cuts)
    expected = fold(honest)
    for period in _periods(honest, foreign, forged):
        assert view.statement(period) == statement(expected, period), period
    # the live path dead-letters every forged client event, with the reason the replay gives
    assert sorted(decode_dead) == sorted(grants.client_event_reason(e) for e in forged)
    # and, once the play's user is known, the plays carrying another user's events
    mixed_pids = {pid for pid, acc in view.state.plays.items() if acc[2]}
    assert mixed_pids <= {r.split("'")[1] for r in view_dead}
    assert all("count nowhere" in r for r in view_dead)


@SQL_SETTINGS
@given(sets=adversarial(), data=st.data())
def test_sql_engine_ignores_other_users_and_lists_forged_client_events(sets, data: st.DataObject) -> None:
    base, legit, foreign, forged = sets
    honest = base + legit
    events = list(data.draw(st.permutations(honest + foreign + forged)))
    expected = fold(honest)
    with tempfile.TemporaryDirectory() as tmp:
        jsonl = Path(tmp) / "events.jsonl"
        jsonl.write_bytes(b"".join(orjson.dumps(codec.to_json(e)) + b"\n" for e in events))
        parquet = Path(tmp) / "archive.parquet"
        pq.write_table(records_to_table([("t", 0, i, None, e) for i, e in enumerate(events)]), parquet)
        for period in _periods(honest, foreign, forged):
            want = statement(expected, period)
            via_codec = sql_engine.compute(jsonl, period, validate="codec")
            assert sorted(via_codec.lines) == want, period
            # bad input, listed with the reason the live path dead-letters it with
            assert sorted(r for _, r in via_codec.rejected) == sorted(grants.client_event_reason(e) for e in forged)
            assert sorted(sql_engine.compute(jsonl, period, validate="sql").lines) == want, period
            assert sorted(sql_engine.compute(parquet, period).lines) == want, period  # the archive as written


# -- the reproduced exploits, as examples ----------------------------------------------------------
def test_another_users_completion_on_a_ten_second_play_counts_nowhere() -> None:
    ev = Events()
    at = parse_ts("2026-05-10T12:00:00Z")
    play = [ev.play_event("started", "pA", "alice", "t1", at),
            ev.play_event("completed", "pA", "alice", "t1", at + 10_000, 10_000)]
    attack = ev.play_event("completed", "pA", "bob", "t1", at + 11_000, 200_000)
    honest = world(ev) + play
    assert statement(fold(honest + [attack]), "2026-05") == statement(fold(honest), "2026-05") == []
    view, _, dead = live(honest + [attack], [3])
    assert view.statement("2026-05") == []
    assert len(dead) == 1 and "'pA'" in dead[0] and "'bob'" in dead[0] and "'alice'" in dead[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "e.jsonl"
        path.write_bytes(b"".join(orjson.dumps(codec.to_json(e)) + b"\n" for e in honest + [attack]))
        assert sql_engine.compute(path, "2026-05").lines == []


def test_bobs_events_on_alices_play_do_not_count_towards_bobs_day() -> None:
    ev = Events()
    at = parse_ts("2026-05-10T12:00:00Z")
    bobs_own = ev.play("pB", user="bob", at=at, ms=60_000)  # a real stream of bob's
    alices = ev.play("pA", user="alice", at=at, ms=60_000)
    huge = ev.play_event("progress", "pA", "bob", "t1", at + 1, 86_400_001)  # would make bob's day impossible
    lines = statement(fold(world(ev) + bobs_own + alices + [huge]), "2026-05")
    assert sum(r.streams for r in lines if r.rightsholder_id == "rhA") == 2


def test_a_trusted_play_started_earlier_by_another_user_decides_the_play() -> None:
    """The rule is the play's user, whoever it is: the earliest play.started decides (royalties.md)."""
    ev = Events()
    at = parse_ts("2026-05-10T12:00:00Z")
    events = world(ev) + [
        ev.play_event("started", "p", "alice", "t1", at),
        ev.play_event("completed", "p", "alice", "t1", at + 60_000, 60_000),
        ev.play_event("started", "p", "bob", "t1", at - 1),
        ev.play_event("progress", "p", "bob", "t1", at + 5_000, 5_000),
    ]
    assert statement(fold(events), "2026-05") == []  # bob's play, 5 s


# -- the client-event rule at its boundaries ----------------------------------------------------------
ISSUED = parse_ts("2026-05-10T12:00:00Z")


@pytest.mark.parametrize(("at", "received", "ok"), [
    (ISSUED - CLIENT_SKEW_MS, ISSUED, True),
    (ISSUED - CLIENT_SKEW_MS - 1, ISSUED, False),
    (ISSUED + 1000, ISSUED + 1000 - CLIENT_SKEW_MS, True),
    (ISSUED + 1000, ISSUED + 1000 - CLIENT_SKEW_MS - 1, False),
    (ISSUED, ISSUED - CLIENT_SKEW_MS, True),
    (ISSUED - CLIENT_SKEW_MS, ISSUED - CLIENT_SKEW_MS - 1, False),
    (ISSUED + OFFLINE_LICENCE_MS - 60_000, ISSUED + OFFLINE_LICENCE_MS, True),  # offline, uploaded late
    (ISSUED + OFFLINE_LICENCE_MS - 60_000, ISSUED + OFFLINE_LICENCE_MS + 1, False),
    (parse_ts("1970-01-01T00:00:00Z"), ISSUED, False),
    (parse_ts("2099-01-01T00:00:00Z"), ISSUED, False),
])
def test_client_event_window(at: int, received: int, ok: bool) -> None:
    e = client(Events(), "completed", grant("u1", "t1", ISSUED), "u1", "t1", at, 45_000, received)
    reason = grants.client_event_reason(e)
    assert (reason is None) == ok, reason
    if not ok:
        assert reason.startswith("play.completed: ")
        with pytest.raises(EventError) as exc:
            grants.check_client_event(e)
        assert exc.value.reason == reason
    assert grants.client_event_reason({**e, "received_at": None}) is None  # trusted: the royalty rules only


def test_client_event_must_carry_a_grant_of_its_user_and_track() -> None:
    ev = Events()
    base = dict(at=ISSUED + 1, ms=45_000, received=ISSUED + 2)
    assert grants.client_event_reason(client(ev, "progress", grant("u1", "t1", ISSUED), "u1", "t1", **base)) is None
    assert "another user" in grants.client_event_reason(
        client(ev, "progress", grant("u2", "t1", ISSUED), "u1", "t1", **base))
    assert "another track" in grants.client_event_reason(
        client(ev, "progress", grant("u1", "t2", ISSUED), "u1", "t1", **base))
    for pid in ("p1", "g1.x", grant("u1", "t1", ISSUED)[:-1], "g1.01." + grant("u1", "t1", ISSUED)[3:]):
        assert "not a server-issued play" in grants.client_event_reason(
            client(ev, "progress", pid, "u1", "t1", **base))
    parsed = grants.parse_grant(grant("ü ser|1", "t/1.x", ISSUED))
    assert (parsed.user_id, parsed.track_id, parsed.issued_ms) == ("ü ser|1", "t/1.x", ISSUED)


def test_fold_and_sql_agree_on_a_legit_offline_upload() -> None:
    ev = Events()
    pid = grant("u1", "t1", ISSUED)
    played = ISSUED + 3 * DAY_MS
    uploaded = ISSUED + 20 * DAY_MS
    events = world(ev) + [client(ev, "started", pid, "u1", "t1", played, 0, uploaded),
                          client(ev, "completed", pid, "u1", "t1", played + 50_000, 50_000, uploaded)]
    lines = statement(fold(events), "2026-05")
    assert sum(r.streams for r in lines if r.rightsholder_id == "rhA") == 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "e.jsonl"
        path.write_bytes(b"".join(orjson.dumps(codec.to_json(e)) + b"\n" for e in events))
        assert sql_engine.compute(path, "2026-05").lines == lines
    assert CAT < ISSUED
