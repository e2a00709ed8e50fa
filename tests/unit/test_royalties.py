"""The royalty fold against spec/royalties.md: the shared fixture byte for byte, and every rule's edge."""

from __future__ import annotations

import json
import random
from pathlib import Path

import orjson
import pytest

from core.timefmt import format_ts, parse_ts
from processors import plays as plays_fold
from processors.royalties import (
    RoyaltyState,
    allocate,
    apply_play_summary,
    evolve,
    fold,
    merge_tallies,
    pools_for,
    statement,
    tally,
)
from processors.statement import StatementLine, to_csv
from schemas.codec import EventError, default_codec

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"  # ../shared/fixtures from the repo

DAY = 86_400_000
T = parse_ts("2026-05-10T12:00:00Z")  # a play time in period 2026-05
CAT = parse_ts("2026-04-01T00:00:00Z")  # catalog time, before every play


# -- event builders (through the codec, so every event has the real shape) ----------------------
class Events:
    """Builds valid in-memory events with unique event ids."""

    def __init__(self) -> None:
        self.n = 0
        self.codec = default_codec()

    def _id(self, eid: str | None) -> str:
        self.n += 1
        return eid or f"e{self.n:06d}"

    def make(self, obj: dict) -> dict:
        obj = {
            k: (format_ts(v) if k in ("occurred_at", "valid_from", "valid_to") and isinstance(v, int) else v)
            for k, v in obj.items()
        }
        return self.codec.from_json(obj)

    def ingest(
        self, tid: str, isrc: str, shares: dict[str, int], at: int = CAT, eid: str | None = None
    ) -> dict:
        return self.make({
            "type": "track.ingested", "event_id": self._id(eid), "occurred_at": at, "track_id": tid,
            "isrc": isrc, "title": tid, "album_id": "al", "artist_ids": ["ar"], "duration_ms": 180_000,
            "genres": [], "explicit": False, "distributor": "d",
            "rightsholders": [{"rightsholder_id": r, "share_ppm": p} for r, p in shares.items()],
        })  # fmt: skip

    def rights(
        self,
        tid: str,
        territory: str = "SE",
        allowed: bool = True,
        at: int = CAT,
        valid_from: int | None = None,
        valid_to: int | None = None,
        eid: str | None = None,
    ) -> dict:
        return self.make({
            "type": "rights.changed", "event_id": self._id(eid), "occurred_at": at, "track_id": tid,
            "territory": territory, "allowed": allowed, "valid_from": valid_from, "valid_to": valid_to,
        })  # fmt: skip

    def takedown(self, tid: str, territories: list[str], at: int, eid: str | None = None) -> dict:
        return self.make({
            "type": "track.taken_down", "event_id": self._id(eid), "occurred_at": at, "track_id": tid,
            "territories": territories, "reason": "test",
        })  # fmt: skip

    def pool(
        self,
        amount: int,
        country: str = "SE",
        product: str = "premium",
        period: str = "2026-05",
        at: int = CAT,
        eid: str | None = None,
    ) -> dict:
        return self.make({
            "type": "royalty.pool_declared", "event_id": self._id(eid), "occurred_at": at, "period": period,
            "country": country, "product": product, "amount_micros": amount, "currency": "EUR",
        })  # fmt: skip

    def play_event(
        self,
        kind: str,
        pid: str,
        user: str,
        tid: str,
        at: int,
        ms: int = 0,
        country: str = "SE",
        product: str = "premium",
        eid: str | None = None,
    ) -> dict:
        obj = {
            "type": f"play.{kind}",
            "event_id": self._id(eid),
            "occurred_at": at,
            "play_id": pid,
            "user_id": user,
            "track_id": tid,
            "country": country,
            "product": product,
        }
        if kind == "started":
            obj.update(device_id="d", context_uri=None, offline=False)
        else:
            obj["ms_played"] = ms
            if kind == "progress":
                obj["context_uri"] = None
        return self.make(obj)

    def play(
        self,
        pid: str,
        user: str = "u1",
        tid: str = "t1",
        at: int = T,
        ms: int = 60_000,
        country: str = "SE",
        product: str = "premium",
    ) -> list[dict]:
        """A started play followed by its completion ``ms`` later."""
        return [
            self.play_event("started", pid, user, tid, at, country=country, product=product),
            self.play_event("completed", pid, user, tid, at + ms, ms, country=country, product=product),
        ]


def world(ev: Events, shares: dict[str, int] | None = None, pool: int = 1_000_000) -> list[dict]:
    """Track t1 (ISRC I1) allowed in SE and DE, pools for SE/DE premium in 2026-05."""
    return [
        ev.ingest("t1", "I1", shares or {"rhA": 600_000, "rhB": 400_000}),
        ev.rights("t1", "SE"),
        ev.rights("t1", "DE"),
        ev.pool(pool, "SE"),
        ev.pool(pool, "DE"),
    ]


def run(events: list[dict], period: str = "2026-05") -> list[StatementLine]:
    return statement(fold(events), period)


def streams_by_line(lines: list[StatementLine]) -> dict[tuple[str, str, str, str], int]:
    return {(r.country, r.product, r.rightsholder_id, r.track_id): r.streams for r in lines}


def total_streams(lines: list[StatementLine], rh: str = "rhA") -> int:
    return sum(r.streams for r in lines if r.rightsholder_id == rh)


@pytest.fixture
def ev() -> Events:
    return Events()


# -- the shared fixture -------------------------------------------------------------------------
def load_fixture() -> list[dict]:
    codec = default_codec()
    out = []
    for line in (FIXTURES / "royalties-sample.jsonl").read_bytes().splitlines():
        try:
            out.append(codec.from_json(orjson.loads(line)))
        except (EventError, orjson.JSONDecodeError):
            continue  # invalid events are dead-lettered and take no part
    return out


@pytest.mark.parametrize("period", ["2026-04", "2026-05"])
def test_fixture_statement_is_byte_identical(period: str) -> None:
    state = fold(load_fixture())
    expected = (FIXTURES / f"royalties-sample-{period}.csv").read_bytes()
    assert to_csv(statement(state, period)).encode("utf-8") == expected


def test_fixture_in_reverse_and_shuffled_order_with_duplicates() -> None:
    events = load_fixture()
    expected = to_csv(statement(fold(events), "2026-05"))
    rnd = random.Random(7)
    shuffled = events + rnd.sample(events, 500)
    rnd.shuffle(shuffled)
    assert to_csv(statement(fold(list(reversed(events))), "2026-05")) == expected
    assert to_csv(statement(fold(shuffled), "2026-05")) == expected


def test_fixture_via_evolve_matches_fold() -> None:
    state = RoyaltyState()
    for e in load_fixture():
        state, out = evolve(state, e)
        assert out == ()
    assert statement(state, "2026-05") == statement(fold(load_fixture()), "2026-05")


# -- plays ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("ms", "streams"), [(29_999, 0), (30_000, 1)])
def test_thirty_second_rule(ev: Events, ms: int, streams: int) -> None:
    assert total_streams(run(world(ev) + ev.play("p1", ms=ms))) == streams


def test_ms_is_the_largest_ms_played_of_the_play(ev: Events) -> None:
    events = world(ev) + [
        ev.play_event("started", "p1", "u1", "t1", T),
        ev.play_event("progress", "p1", "u1", "t1", T + 40_000, 31_000),
        ev.play_event("progress", "p1", "u1", "t1", T + 50_000, 12_000),  # smaller, later: max wins
    ]
    assert total_streams(run(events)) == 1


def test_play_without_started_uses_its_earliest_event(ev: Events) -> None:
    april = parse_ts("2026-04-30T23:59:00Z")
    events = world(ev) + [
        ev.pool(500, "DE", period="2026-04"),
        ev.play_event("progress", "p1", "u1", "t1", april + 120_000, 35_000, country="SE"),
        ev.play_event("completed", "p1", "u1", "t1", april, 40_000, country="DE"),  # earliest: decides
    ]
    lines = run(events, "2026-04")
    assert lines == [
        StatementLine("2026-04", "DE", "premium", "rhA", "t1", 1, 300),
        StatementLine("2026-04", "DE", "premium", "rhB", "t1", 1, 200),
    ]
    assert run(events, "2026-05") == []


def test_play_started_decides_even_if_another_event_is_earlier(ev: Events) -> None:
    start = parse_ts("2026-05-01T00:00:10Z")
    events = world(ev) + [
        ev.play_event("progress", "p1", "u1", "t1", start - 60_000, 45_000, country="DE"),  # in April
        ev.play_event("started", "p1", "u1", "t1", start, country="SE"),
    ]
    assert streams_by_line(run(events)) == {
        ("SE", "premium", "rhA", "t1"): 1,
        ("SE", "premium", "rhB", "t1"): 1,
    }
    assert run(events, "2026-04") == []


def test_earliest_play_started_wins_and_ties_break_on_event_id(ev: Events) -> None:
    events = world(ev) + [
        ev.play_event("started", "p1", "u1", "t1", T, country="DE", eid="b"),
        ev.play_event("started", "p1", "u1", "t1", T, country="SE", eid="a"),  # same time, smaller id
        ev.play_event("completed", "p1", "u1", "t1", T + 50_000, 50_000, country="DE"),
    ]
    assert {r.country for r in run(events)} == {"SE"}


def test_duplicate_event_ids_count_once(ev: Events) -> None:
    events = world(ev) + ev.play("p1")
    doubled = events + [dict(e) for e in events]
    assert run(doubled) == run(events)
    assert total_streams(run(doubled)) == 1


def test_plays_split_by_period_boundary(ev: Events) -> None:
    last_ms_of_may = parse_ts("2026-05-31T23:59:59.999Z")
    events = world(ev) + ev.play("p1", at=last_ms_of_may) + ev.play("p2", at=last_ms_of_may + 1)
    assert total_streams(run(events, "2026-05")) == 1
    assert total_streams(run(events, "2026-06")) == 1


# -- catalog ----------------------------------------------------------------------------------------
def test_unknown_track_is_not_a_stream(ev: Events) -> None:
    assert run(world(ev) + ev.play("p1", tid="t-unknown") + [ev.rights("t-unknown")]) == []


def test_alias_upload_with_changed_shares(ev: Events) -> None:
    alias_at = T + DAY
    events = world(ev) + [
        ev.ingest("t1-x", "I1", {"rh99": 250_000, "rhA": 750_000}, at=alias_at),
        *ev.play("p1", tid="t1-x", at=T),  # before the re-upload: the original shares
        *ev.play("p2", tid="t1-x", at=alias_at),  # at the re-upload time (<=): the new shares
        *ev.play("p3", tid="t1", at=alias_at + 1),  # canon id, after: the new shares too
    ]
    assert streams_by_line(run(events)) == {
        ("SE", "premium", "rhA", "t1"): 3,
        ("SE", "premium", "rhB", "t1"): 1,
        ("SE", "premium", "rh99", "t1"): 2,
    }


def test_track_isrc_is_that_of_its_earliest_ingestion(ev: Events) -> None:
    # re-ingesting t1 under another ISRC does not change t1's ISRC, so not its shares either
    events = world(ev) + [ev.ingest("t1", "LATER", {"rh77": 1_000_000}, at=T - DAY)] + ev.play("p1")
    assert {r.rightsholder_id for r in run(events)} == {"rhA", "rhB"}


def test_earliest_ingestion_with_the_isrc_is_canonical_whatever_arrives_first(ev: Events) -> None:
    late_but_earlier = ev.ingest("t0", "I1", {"rhZ": 1_000_000}, at=CAT - DAY)  # earlier than t1's
    events = world(ev) + ev.play("p1", tid="t1") + [late_but_earlier]
    # canon of t1 is now t0 (t1's rights event maps to it); shares: the latest with I1 <= play time (t1's)
    assert streams_by_line(run(events)) == {
        ("SE", "premium", "rhA", "t0"): 1,
        ("SE", "premium", "rhB", "t0"): 1,
    }


def test_play_before_any_ingestion_of_the_isrc_has_no_shares(ev: Events) -> None:
    assert run(world(ev) + ev.play("p1", at=CAT - 1)) == []


def test_zero_share_rightsholder_gets_no_line(ev: Events) -> None:
    events = world(ev, shares={"rhA": 1_000_000, "rhZ": 0}) + ev.play("p1")
    assert [r.rightsholder_id for r in run(events)] == ["rhA"]


# -- rights -----------------------------------------------------------------------------------------
def _rights_world(ev: Events, **rights: object) -> list[dict]:
    return [ev.ingest("t1", "I1", {"rhA": 1_000_000}), ev.rights("t1", "SE", **rights), ev.pool(10, "SE")]


@pytest.mark.parametrize(
    ("valid_from", "valid_to", "streams"),
    [
        (T, None, 1),  # valid_from <= play_time
        (T + 1, None, 0),
        (None, T, 0),  # play_time < valid_to
        (None, T + 1, 1),
        (T, T + 1, 1),
        (None, None, 1),
    ],
)
def test_rights_window_boundaries(
    ev: Events, valid_from: int | None, valid_to: int | None, streams: int
) -> None:
    events = _rights_world(ev, valid_from=valid_from, valid_to=valid_to) + ev.play("p1")
    assert total_streams(run(events)) == streams


def test_no_rights_event_means_no_stream(ev: Events) -> None:
    events = [ev.ingest("t1", "I1", {"rhA": 1_000_000}), ev.rights("t1", "DE")] + ev.play("p1", country="SE")
    assert run(events) == []


def test_rights_disallowed(ev: Events) -> None:
    assert run(_rights_world(ev, allowed=False) + ev.play("p1")) == []


def test_rights_event_after_play_time_is_ignored(ev: Events) -> None:
    base = _rights_world(ev)
    revoke_after = ev.rights("t1", "SE", allowed=False, at=T + 1)
    revoke_at = ev.rights("t1", "SE", allowed=False, at=T)
    assert total_streams(run(base + [revoke_after] + ev.play("p1"))) == 1
    assert total_streams(run(base + [revoke_at] + ev.play("p1"))) == 0  # occurred_at <= play_time counts


def test_latest_rights_ties_break_on_event_id(ev: Events) -> None:
    events = [
        ev.ingest("t1", "I1", {"rhA": 1_000_000}),
        ev.rights("t1", "SE", allowed=True, at=CAT, eid="r-b"),
        ev.rights("t1", "SE", allowed=False, at=CAT, eid="r-a"),
    ]
    assert total_streams(run(events + ev.play("p1"))) == 1
    events[1:] = [
        ev.rights("t1", "SE", allowed=False, at=CAT, eid="r-d"),
        ev.rights("t1", "SE", at=CAT, eid="r-c"),
    ]
    assert total_streams(run(events + ev.play("p1"))) == 0


def test_rights_on_alias_id_apply_to_canon(ev: Events) -> None:
    events = [
        ev.ingest("t1", "I1", {"rhA": 1_000_000}),
        ev.ingest("t1-x", "I1", {"rhA": 1_000_000}, at=CAT + 1),
        ev.rights("t1-x", "SE", at=CAT + 2),  # the only rights event names the alias
    ]
    assert streams_by_line(run(events + ev.play("p1", tid="t1"))) == {("SE", "premium", "rhA", "t1"): 1}
    # and an alias rights event later than the canon's one is the latest for the canon
    events.append(ev.rights("t1-x", "SE", allowed=False, at=CAT + 3))
    assert run(events + ev.play("p1", tid="t1")) == []


# -- takedowns --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("territories", "at", "streams"),
    [(["*"], T, 0), (["*"], T + 1, 1), (["SE"], T - 1, 0), (["DE"], T - 1, 1), (["DE", "*"], T, 0)],
)
def test_takedown(ev: Events, territories: list[str], at: int, streams: int) -> None:
    events = world(ev) + [ev.takedown("t1", territories, at)] + ev.play("p1")
    assert total_streams(run(events)) == streams


def test_takedown_of_alias_applies_to_canon(ev: Events) -> None:
    events = world(ev) + [ev.ingest("t1-x", "I1", {"rhA": 1_000_000}, at=CAT + 1)]
    events += [ev.takedown("t1-x", ["*"], T - 1)] + ev.play("p1", tid="t1")
    assert run(events) == []


# -- fraud rules ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("extra_ms", "streams"), [(0, 2), (1, 0)])
def test_impossible_listening_threshold(ev: Events, extra_ms: int, streams: int) -> None:
    # day total = 86,400,000 exactly is allowed; one more ms and none of the user's plays that day count
    day0 = parse_ts("2026-05-10T00:00:00Z")
    events = world(ev) + [ev.ingest("t2", "I2", {"rhA": 1_000_000}), ev.rights("t2", "SE")]
    events += ev.play("p1", at=day0, ms=40_000_000)
    events += ev.play("p2", at=day0 + 1000, ms=46_390_000 + extra_ms, tid="t2")
    events += ev.play("p3", at=day0 + 2000, ms=10_000)  # short: not eligible, still counted in the sum
    lines = run(events)
    assert total_streams(lines) == streams
    # the same user's plays on another day and another user's plays are unaffected
    events += ev.play("p4", at=day0 + DAY) + ev.play("p5", user="u2", at=day0)
    assert total_streams(run(events)) == streams + 2


def test_impossible_listening_counts_plays_of_unknown_tracks_and_other_countries(ev: Events) -> None:
    day0 = parse_ts("2026-05-10T00:00:00Z")
    events = world(ev) + ev.play("p1", at=day0, ms=60_000)
    assert total_streams(run(events)) == 1
    events += ev.play("p2", tid="nope", at=day0 + 5, ms=86_340_000, country="DE")  # exactly 86.4M in total
    assert total_streams(run(events)) == 1
    events.append(ev.play_event("progress", "p2", "u1", "nope", day0 + 10, 86_340_001, country="DE"))
    assert total_streams(run(events)) == 0


@pytest.mark.parametrize(("n", "streams"), [(20, 20), (21, 20)])
def test_loop_cap(ev: Events, n: int, streams: int) -> None:
    day0 = parse_ts("2026-05-10T00:00:00Z")
    events = world(ev)
    for i in range(n):
        events += ev.play(f"p{i:02d}", at=day0 + i * 100_000)
    assert total_streams(run(events)) == streams


def test_loop_cap_keeps_the_first_twenty_by_play_time_then_play_id(ev: Events) -> None:
    day0 = parse_ts("2026-05-10T00:00:00Z")
    events = world(ev) + [ev.ingest("t1-x", "I1", {"rhA": 500_000, "rhB": 500_000}, at=CAT + 1)]
    for i in range(5):  # listed first, played last: never among the first twenty
        events += ev.play(f"late{i}", at=day0 + 9_000_000 + i, country="DE")
    for i in range(19):
        events += ev.play(f"p{i:02d}", at=day0 + 1_000_000 + i)
    # two plays at the same later instant, the alias counts for the same canon: "pb" is the 21st
    events += ev.play("pb", at=day0 + 5_000_000, country="DE")
    events += ev.play("pa", at=day0 + 5_000_000, tid="t1-x", country="SE")
    lines = run(events)
    assert total_streams(lines) == 20
    assert not any(r.country == "DE" for r in lines)
    # another canon or another day has its own cap
    events += [ev.ingest("t2", "I2", {"rhA": 1_000_000}), ev.rights("t2", "SE")]
    events += ev.play("q1", tid="t2", at=day0 + 6_000_000) + ev.play("q2", at=day0 + DAY)
    assert total_streams(run(events)) == 22


def test_loop_cap_counts_only_plays_that_are_otherwise_eligible(ev: Events) -> None:
    day0 = parse_ts("2026-05-10T00:00:00Z")
    events = world(ev)
    for i in range(5):
        events += ev.play(f"short{i}", at=day0 + i, ms=1_000)  # earliest, but not eligible
    for i in range(20):
        events += ev.play(f"p{i:02d}", at=day0 + 100_000 + i)
    assert total_streams(run(events)) == 20


# -- money ------------------------------------------------------------------------------------------
def test_pool_declared_twice_latest_wins(ev: Events) -> None:
    base = [ev.ingest("t1", "I1", {"rhA": 1_000_000}), ev.rights("t1", "SE")] + ev.play("p1")
    first = ev.pool(100, at=CAT, eid="pool-1")
    later = ev.pool(700, at=CAT + 1, eid="pool-0")
    assert run(base + [later, first])[0].amount_micros == 700
    same_time = [ev.pool(100, at=CAT, eid="pool-a"), ev.pool(300, at=CAT, eid="pool-b")]
    assert run(base + same_time[::-1])[0].amount_micros == 300


def test_no_pool_gives_zero_amounts_but_keeps_the_lines(ev: Events) -> None:
    events = [ev.ingest("t1", "I1", {"rhA": 1_000_000}), ev.rights("t1", "SE")] + ev.play("p1")
    assert run(events) == [StatementLine("2026-05", "SE", "premium", "rhA", "t1", 1, 0)]


def test_pool_of_another_period_or_product_does_not_apply(ev: Events) -> None:
    events = [ev.ingest("t1", "I1", {"rhA": 1_000_000}), ev.rights("t1", "SE")] + ev.play("p1")
    events += [ev.pool(5, period="2026-04"), ev.pool(6, product="free")]
    assert run(events)[0].amount_micros == 0


def test_largest_remainder_and_ties_to_smaller_rightsholder_then_track(ev: Events) -> None:
    # P = 10 over one stream with shares 1/3 (+1 ppm), 1/3, 1/3: floors 3,3,3; the extra micro goes to
    # the largest remainder (rhC has 333,334 ppm)
    events = world(ev, shares={"rhC": 333_334, "rhA": 333_333, "rhB": 333_333}, pool=10) + ev.play("p1")
    assert [(r.rightsholder_id, r.amount_micros) for r in run(events)] == [("rhA", 3), ("rhB", 3), ("rhC", 4)]
    # exact ties: P = 1 split 50/50 -> the smaller rightsholder_id gets the micro
    ev2 = Events()
    events = world(ev2, shares={"rhB": 500_000, "rhA": 500_000}, pool=1) + ev2.play("p1")
    assert [(r.rightsholder_id, r.amount_micros) for r in run(events)] == [("rhA", 1), ("rhB", 0)]
    # same rightsholder on two tracks, tied: the smaller track_id gets it
    ev3 = Events()
    events = [ev3.ingest("t2", "I2", {"rhA": 1_000_000}), ev3.ingest("t1", "I1", {"rhA": 1_000_000})]
    events += [ev3.rights("t1"), ev3.rights("t2"), ev3.pool(3)]
    events += ev3.play("p1", tid="t2") + ev3.play("p2", tid="t1", user="u2")
    assert [(r.track_id, r.amount_micros) for r in run(events)] == [("t1", 2), ("t2", 1)]


def test_amounts_per_country_product_sum_to_pool_and_streams_are_per_rightsholder(ev: Events) -> None:
    events = world(ev, shares={"rhA": 123_457, "rhB": 876_543}, pool=1_000_003)
    events += [ev.ingest("t2", "I2", {"rhB": 1_000_000}), ev.rights("t2", "SE"), ev.rights("t2", "DE")]
    for i in range(7):
        events += ev.play(f"a{i}", user=f"u{i}", tid="t1" if i % 3 else "t2", country="SE" if i < 5 else "DE")
    lines = run(events)
    for country in ("SE", "DE"):
        assert sum(r.amount_micros for r in lines if r.country == country) == 1_000_003
    by = streams_by_line(lines)
    assert by[("SE", "premium", "rhB", "t2")] == 2 and by[("SE", "premium", "rhA", "t1")] == 3
    assert by[("SE", "premium", "rhB", "t1")] == 3


def test_allocate_is_integer_exact_for_huge_pools() -> None:
    from processors.royalties import Tally

    t = Tally(streams={("SE", "free"): 3}, lines={("SE", "free"): {("a", "t"): [3, 3_000_000]}})
    big = 9_223_372_036_854_775_807
    assert allocate(t, {("SE", "free"): big}, "2026-05")[0].amount_micros == big


# -- state shapes and the live path -----------------------------------------------------------------
def test_state_round_trips_through_json() -> None:
    state = fold(load_fixture())
    again = RoyaltyState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert statement(again, "2026-05") == statement(state, "2026-05")
    assert again.by_period.keys() == state.by_period.keys()


def test_play_summaries_applied_upstream_give_the_same_statement() -> None:
    events = load_fixture()
    other = [e for e in events if not e["type"].startswith("play.")]
    play_state = plays_fold.PlayState()
    royalty_state = fold(other)
    forwarded = 0
    for e in events:
        play_state, outs = plays_fold.evolve(play_state, e)
        for summary in outs:
            royalty_state, _ = apply_play_summary(royalty_state, summary)
            forwarded += 1
    assert forwarded < sum(1 for e in events if e["type"].startswith("play."))  # only changes are forwarded
    assert statement(royalty_state, "2026-05") == statement(fold(events), "2026-05")


def test_tallies_of_user_partitions_merge_to_the_statement() -> None:
    events = load_fixture()
    shared = [e for e in events if not e["type"].startswith("play.")]
    parts = [
        [e for e in events if e["type"].startswith("play.") and hash(e["user_id"]) % 3 == k] for k in range(3)
    ]
    states = [fold(shared + p) for p in parts]
    merged = merge_tallies(tally(s, "2026-05") for s in states)
    assert allocate(merged, pools_for(states[0], "2026-05"), "2026-05") == statement(fold(events), "2026-05")


def test_other_event_types_are_ignored(ev: Events) -> None:
    state = fold(world(ev) + ev.play("p1"))
    before = state.to_dict()
    user = ev.make({"type": "user.registered", "event_id": "x1", "occurred_at": T, "user_id": "u1",
                    "country": "SE", "product": "free", "display_name": "x"})  # fmt: skip
    state, out = evolve(state, user)
    assert out == () and state.to_dict() == before


def test_fold_assembles_plays_with_the_live_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay fold runs the live path's steps (plays.summaries_of per batch, apply_play_summary):
    any batch size, or one event at a time through evolve, gives the same state and statement."""
    import processors.royalties as royalties_mod

    events = load_fixture()
    whole = fold(events)
    seen: list[int] = []
    real = plays_fold.summaries_of

    def spy(batch: list[dict]) -> list:
        seen.append(len(batch))
        return real(batch)

    monkeypatch.setattr(royalties_mod, "FOLD_BATCH", 97)
    monkeypatch.setattr(plays_fold, "summaries_of", spy)
    small = fold(events)
    n_play_events = sum(1 for e in events if e["type"].startswith("play."))
    assert sum(seen) == n_play_events and max(seen) == 97
    one_by_one = RoyaltyState()
    for e in events:
        evolve(one_by_one, e)
    for state in (small, one_by_one):
        assert state.plays == whole.plays and state.by_period == whole.by_period
        assert to_csv(statement(state, "2026-05")) == to_csv(statement(whole, "2026-05"))
    assert "_on_play" not in vars(royalties_mod)
