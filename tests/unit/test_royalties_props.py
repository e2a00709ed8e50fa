"""Properties of the royalty fold over generated event sets built on a tiny id universe, so that
aliases, ties, window boundaries, the loop cap and impossible listening collide often. The
instants straddle a day boundary and the April/May month boundary, so events fall in both periods.

Each property is checked for every period the generated events fall in (their occurred_at, and
the periods their pools are declared for):
- the statement does not depend on event order or duplication;
- it equals a deliberately naive, literal reading of spec/royalties.md (the oracle below);
- the lines of a (period, country, product) with S > 0 sum to exactly P.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path

import orjson
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from core.timefmt import parse_ts, period_of
from processors.royalties import fold, statement, tally
from processors.statement import StatementLine
from replay import sql_engine
from schemas.codec import default_codec
from tests.unit.test_royalties import Events

PERIODS = ["2026-04", "2026-05"]
MIDNIGHT = parse_ts("2026-05-11T00:00:00Z")
MAY_1 = parse_ts("2026-05-01T00:00:00Z")  # a day boundary that is also the month boundary
INSTANTS = [MIDNIGHT - 86_400_000, MIDNIGHT - 1, MIDNIGHT, MIDNIGHT + 1, MIDNIGHT + 3_600_000,
            MAY_1 - 86_400_000, MAY_1 - 1, MAY_1, MAY_1 + 1]
MS = [0, 29_999, 30_000] + [45_000] * 6 + [43_200_000, 43_200_001, 86_400_000]
TRACKS = ["t1", "t1x", "t2", "t3"]  # t3 is never ingested
PLAYED = ["t1", "t1", "t1", "t2", "t1x", "t3"]
SHARES = [
    {"a": 1_000_000},
    {"a": 500_000, "b": 500_000},
    {"b": 333_334, "a": 333_333, "c": 333_333},
    {"c": 999_999, "b": 1},
]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def event_sets(draw: st.DrawFn) -> list[dict]:
    ev = Events()
    inst = st.sampled_from(INSTANTS)
    country = st.sampled_from(["SE", "DE"])
    out: list[dict] = []
    if draw(st.integers(0, 3)):  # mostly: a base catalog where plays can qualify, extras collide with it
        early = MAY_1 - 2 * 86_400_000
        out.append(ev.ingest("t1", "I1", draw(st.sampled_from(SHARES)), at=early))
        out.append(ev.ingest("t2", "I2", draw(st.sampled_from(SHARES)), at=early))
        out += [ev.rights(t, c, at=early) for t in ("t1", "t2") for c in ("SE", "DE")]
        out += [ev.pool(draw(st.integers(0, 10_000_007)), "SE", "premium", period=p, at=early) for p in PERIODS]
    for _ in range(draw(st.integers(0, 4))):
        out.append(ev.ingest(draw(st.sampled_from(TRACKS[:3])), draw(st.sampled_from(["I1", "I2"])),
                             draw(st.sampled_from(SHARES)), at=draw(inst)))  # fmt: skip
    for _ in range(draw(st.integers(0, 5))):
        vf, vt = draw(st.one_of(st.none(), inst)), draw(st.one_of(st.none(), inst))
        if vf is not None and vt is not None and vt < vf:
            vf, vt = vt, vf
        out.append(ev.rights(draw(st.sampled_from(TRACKS)), draw(country), draw(st.booleans()), at=draw(inst),
                             valid_from=vf, valid_to=vt))  # fmt: skip
    for _ in range(draw(st.integers(0, 2))):
        territories = draw(st.sampled_from([["*"], ["SE"], ["DE"], ["DE", "SE"]]))
        out.append(ev.takedown(draw(st.sampled_from(TRACKS)), territories, at=draw(inst)))
    for _ in range(draw(st.integers(0, 3))):
        out.append(ev.pool(draw(st.integers(0, 10_000_007)), draw(country), draw(st.sampled_from(["free", "premium"])),
                           period=draw(st.sampled_from(PERIODS)), at=draw(inst)))  # fmt: skip
    for _ in range(draw(st.integers(0, 16))):
        kind = draw(st.sampled_from(["started", "progress", "completed", "skipped"]))
        out.append(ev.play_event(
            kind, draw(st.sampled_from([f"p{i}" for i in range(8)])), draw(st.sampled_from(["u1", "u2"])),
            draw(st.sampled_from(PLAYED)), draw(inst) + draw(st.integers(0, 2)), draw(st.sampled_from(MS)),
            country=draw(country), product=draw(st.sampled_from(["free", "premium"])),
        ))  # fmt: skip
    if draw(st.booleans()):  # a burst around the loop cap
        user, track, at = draw(st.sampled_from(["u1", "u2"])), draw(st.sampled_from(TRACKS[:3])), draw(inst)
        for i in range(draw(st.integers(18, 23))):
            out += ev.play(f"b{i}", user=user, tid=track, at=at + draw(st.integers(0, 3)), ms=30_000,
                           country=draw(country))  # fmt: skip
    return out


def periods_of(events: list[dict]) -> list[str]:
    """Every period the events fall in: their occurred_at's month, and the periods of their pools."""
    out = {period_of(e["occurred_at"]) for e in events}
    out |= {e["period"] for e in events if e["type"] == "royalty.pool_declared"}
    return sorted(out)


# -- the oracle: spec/royalties.md read literally, no cleverness, no speed ------------------------
def _order(e: dict) -> tuple[int, str]:
    return (e["occurred_at"], e["event_id"])


def _by_type(events: list[dict]) -> dict[str, list[dict]]:
    unique: dict[str, dict] = {}
    for e in events:
        unique.setdefault(e["event_id"], e)
    of = defaultdict(list)
    for e in unique.values():
        of[e["type"]].append(e)
    return of


def oracle_streams(events: list[dict], period: str) -> list[tuple]:
    """The streams of a period: (play_time, play_id, country, product, (canon, rightsholders))."""
    return _streams(_by_type(events), period)


def _streams(of: dict[str, list[dict]], period: str) -> list[tuple]:
    ingests = sorted(of["track.ingested"], key=_order)

    def isrc_of(t: str) -> str | None:
        return next((i["isrc"] for i in ingests if i["track_id"] == t), None)

    def canon_of(t: str) -> str | None:
        isrc = isrc_of(t)
        return None if isrc is None else next(i["track_id"] for i in ingests if i["isrc"] == isrc)

    plays = defaultdict(list)
    for t in ("play.started", "play.progress", "play.skipped", "play.completed"):
        for e in of[t]:
            plays[e["play_id"]].append(e)
    records = []
    for pid, ps in plays.items():
        starts = [e for e in ps if e["type"] == "play.started"]
        dec = min(starts or ps, key=_order)
        ps = [e for e in ps if e["user_id"] == dec["user_id"]]  # other users' events count nowhere
        ms = max((e["ms_played"] for e in ps if e["type"] != "play.started"), default=0)
        pt = dec["occurred_at"]
        if period_of(pt) == period:
            records.append((pid, dec["user_id"], dec["track_id"], dec["country"], dec["product"], pt, ms))

    def shares_if_eligible(track: str, country: str, pt: int, ms: int):  # noqa: ANN202
        canon = canon_of(track)
        if ms < 30_000 or canon is None:
            return None
        rights = [r for r in of["rights.changed"]
                  if canon_of(r["track_id"]) == canon and r["territory"] == country and r["occurred_at"] <= pt]  # fmt: skip
        if not rights:
            return None
        r = max(rights, key=_order)
        if not r["allowed"] or not (r["valid_from"] is None or r["valid_from"] <= pt):
            return None
        if not (r["valid_to"] is None or pt < r["valid_to"]):
            return None
        for td in of["track.taken_down"]:
            if canon_of(td["track_id"]) == canon and td["occurred_at"] <= pt:
                if country in td["territories"] or "*" in td["territories"]:
                    return None
        cands = [i for i in ingests if i["isrc"] == isrc_of(canon) and i["occurred_at"] <= pt]
        if not cands:
            return None
        return canon, max(cands, key=_order)["rightsholders"]

    day_total = defaultdict(int)
    for _, user, _, _, _, pt, ms in records:
        day_total[(user, pt // 86_400_000)] += ms
    groups = defaultdict(list)
    for pid, user, track, country, product, pt, ms in records:
        if day_total[(user, pt // 86_400_000)] > 86_400_000:
            continue
        decided = shares_if_eligible(track, country, pt, ms)
        if decided is not None:
            groups[(user, decided[0], pt // 86_400_000)].append((pt, pid, country, product, decided))
    streams = []
    for lst in groups.values():
        streams += sorted(lst)[:20]
    return streams


def oracle(events: list[dict], period: str) -> list[StatementLine]:
    of = _by_type(events)
    streams = _streams(of, period)
    pools = {}
    for p in sorted(of["royalty.pool_declared"], key=_order):
        if p["period"] == period:
            pools[(p["country"], p["product"])] = p["amount_micros"]
    out = []
    for cp in sorted({(s[2], s[3]) for s in streams}):
        mine = [s for s in streams if (s[2], s[3]) == cp]
        S, P = len(mine), pools.get(cp, 0)
        lines = defaultdict(lambda: [0, 0])
        for *_, (canon, rhs) in mine:
            for r in rhs:
                if r["share_ppm"] > 0:
                    lines[(r["rightsholder_id"], canon)][0] += 1
                    lines[(r["rightsholder_id"], canon)][1] += r["share_ppm"]
        amounts = {k: P * w // (S * 1_000_000) for k, (_, w) in lines.items()}
        rem = {k: P * w % (S * 1_000_000) for k, (_, w) in lines.items()}
        for k in sorted(lines, key=lambda k: (-rem[k], k))[: P - sum(amounts.values())]:
            amounts[k] += 1
        out += [StatementLine(period, *cp, rh, t, lines[(rh, t)][0], amounts[(rh, t)]) for rh, t in lines]
    return sorted(out)


def test_generated_sets_reach_both_periods() -> None:
    """The generator is not stuck in one month: some set has streams in April and in May."""
    both = find(event_sets(), lambda evs: all(statement(fold(evs), p) for p in PERIODS),
                settings=settings(max_examples=5_000, database=None, deadline=None))
    assert periods_of(both) == PERIODS
    assert all(oracle(both, p) == statement(fold(both), p) != [] for p in PERIODS)


@SETTINGS
@given(events=event_sets())
def test_fold_equals_the_literal_oracle(events: list[dict]) -> None:
    state = fold(events)
    for period in periods_of(events):
        assert statement(state, period) == oracle(events, period), period


@SETTINGS
@given(events=event_sets(), data=st.data())
def test_statement_ignores_order_and_duplicates(events: list[dict], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(events))
    dups = data.draw(st.lists(st.sampled_from(events), max_size=8)) if events else []
    mixed = list(shuffled)
    for d in dups:
        mixed.insert(data.draw(st.integers(0, len(mixed))), dict(d))
    assert periods_of(mixed) == periods_of(events)
    once, mixed_state = fold(events), fold(mixed)
    for period in periods_of(events):
        assert statement(mixed_state, period) == statement(once, period), period


@SETTINGS
@given(events=event_sets())
def test_lines_of_a_country_product_with_streams_sum_to_the_pool(events: list[dict]) -> None:
    state = fold(events)
    for period in periods_of(events):
        lines = statement(state, period)
        streams = tally(state, period).streams
        for (country, product), s in streams.items():
            mine = [r for r in lines if (r.country, r.product) == (country, product)]
            pool = state.pools.get((period, country, product), (0, "", 0))[2]
            assert s > 0 and mine
            assert sum(r.amount_micros for r in mine) == pool
            for r in mine:
                assert 0 < r.streams <= s and r.amount_micros >= 0 and r.period == period
        assert {(r.country, r.product) for r in lines} == set(streams)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=event_sets())
def test_sql_engine_agrees_with_the_fold(events: list[dict]) -> None:
    """One statement whatever the engine: the replay's sql engine (DuckDB) against the fold."""
    codec = default_codec()
    state = fold(events)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        path.write_bytes(b"".join(orjson.dumps(codec.to_json(e)) + b"\n" for e in events))
        for period in periods_of(events):
            assert sorted(sql_engine.compute_from_path(path, period)) == statement(state, period), period
