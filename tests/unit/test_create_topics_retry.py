"""Creating the catalog's topics asks again after a transient error of a cluster still settling (a
3-node cluster just started failed a CreateTopics with "Broker handle destroyed without termination"),
and still reports at once an error that asking again cannot fix."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException

from core.errors import PlaylogError
from core.settings import Settings
from topics import admin as topics_admin
from topics.topic_catalog import load_catalog


class _Cluster:
    """An admin client's view: topics that exist, and errors to give the next CreateTopics calls."""

    def __init__(self, failures: list[int | None]) -> None:
        self.topics: set[str] = set()
        self.failures = failures
        self.calls = 0

    def client(self, settings: Settings) -> _Cluster:
        return self

    def list_topics(self, timeout: float) -> SimpleNamespace:
        return SimpleNamespace(topics={t: None for t in self.topics})

    def create_topics(self, todo: list, request_timeout: float) -> dict[str, Future]:
        code = self.failures[self.calls] if self.calls < len(self.failures) else None
        self.calls += 1
        out = {}
        for i, t in enumerate(todo):
            f: Future = Future()
            if code is not None and i == 0:  # the first topic of the call fails
                f.set_exception(KafkaException(KafkaError(code)))
            else:
                self.topics.add(t.topic)
                f.set_result(None)
            out[t.topic] = f
        return out


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch):
    def make(failures: list[int | None]) -> _Cluster:
        c = _Cluster(failures)
        monkeypatch.setattr(topics_admin, "admin_client", c.client)
        monkeypatch.setattr(topics_admin, "_wait_for_leaders", lambda *a, **k: None)
        monkeypatch.setattr(topics_admin, "_wait_until_served", lambda *a, **k: None)
        monkeypatch.setattr(topics_admin.time, "sleep", lambda s: None)
        return c
    return make


def test_a_transient_error_is_asked_again_and_every_topic_is_created(cluster) -> None:
    c = cluster([KafkaError._DESTROY_BROKER, KafkaError._TRANSPORT])
    created = topics_admin.create_topics(Settings(topic_prefix="x."), replication=1)
    names = {t.full_name("x.") for t in load_catalog()}
    assert set(created) == names == c.topics and len(created) == len(names)
    assert c.calls == 3


def test_an_error_asking_again_cannot_fix_is_reported_at_once(cluster) -> None:
    c = cluster([KafkaError.INVALID_REPLICATION_FACTOR])
    with pytest.raises(PlaylogError, match="cannot create topic .*[Rr]eplication"):
        topics_admin.create_topics(Settings(topic_prefix="x."), replication=3)
    assert c.calls == 1


def test_a_transient_error_that_never_ends_is_reported_after_the_last_attempt(cluster) -> None:
    c = cluster([KafkaError._DESTROY_BROKER] * topics_admin.CREATE_ATTEMPTS)
    with pytest.raises(PlaylogError, match="Broker handle destroyed"):
        topics_admin.create_topics(Settings(topic_prefix="x."), replication=1)
    assert c.calls == topics_admin.CREATE_ATTEMPTS
