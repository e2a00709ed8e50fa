"""librdkafka's repeated connect failures reach the log once per interval, with a count of the rest."""

from __future__ import annotations

import logging

from topics.client_log import RepeatFilter, client_logger

FAIL = "FAIL [rdkafka#consumer-2] [thrd:127.0.0.1:35477/bootstrap]: Connect to ipv4#127.0.0.1:35477 failed: " \
       "Connection refused (after %dms in state CONNECT)"


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("x.rdkafka", logging.ERROR, __file__, 1, msg, args, None)


def test_a_repeat_within_the_interval_is_held_back_and_counted_on_the_next_one_through() -> None:
    clock = _Clock()
    f = RepeatFilter(every=30, clock=clock)
    passed = []
    for i in range(600):  # 20 a second for 30 s
        r = _record(FAIL, i % 3)
        if f.filter(r):
            passed.append(r.getMessage())
        clock.now += 0.05
    clock.now += 0.5
    r = _record(FAIL, 7)
    assert f.filter(r)
    passed.append(r.getMessage())
    assert len(passed) == 2
    assert passed[0] == FAIL % 0
    assert passed[1].startswith(FAIL % 7) and "(599 like it in the last 30s not shown)" in passed[1]


def test_other_messages_are_not_held_back_by_a_flood() -> None:
    clock = _Clock()
    f = RepeatFilter(every=30, clock=clock)
    assert f.filter(_record(FAIL, 0))
    assert not f.filter(_record(FAIL, 1))
    assert f.filter(_record("broker at %s answers again", "127.0.0.1:9092"))


def test_the_client_logger_has_one_filter_however_often_it_is_asked_for() -> None:
    a, b = client_logger("tests.clientlog"), client_logger("tests.clientlog")
    assert a is b and a.name == "tests.clientlog.rdkafka"
    assert sum(isinstance(f, RepeatFilter) for f in a.filters) == 1
