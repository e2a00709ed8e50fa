"""Every catalog topic states its retention and why (issue 15)."""

from __future__ import annotations

from topics.topic_catalog import load_catalog, topic_spec

DAY_MS = 24 * 60 * 60 * 1000


def test_every_topic_states_a_retention_and_a_reason() -> None:
    for t in load_catalog():
        assert isinstance(t.retention_ms, int) and (t.retention_ms == -1 or t.retention_ms > 0), t.name
        assert len(t.retention_reason) > 20, f"{t.name}: no retention reason"
        assert t.config()["retention.ms"] == str(t.retention_ms)


def test_compacted_topics_say_compaction() -> None:
    for t in load_catalog():
        if t.cleanup_policy == "compact":
            assert "ompaction" in t.retention_reason, t.name


def test_listening_is_kept_for_the_royalty_audit_period() -> None:
    t = topic_spec("listening")
    assert t.retention_ms == (3 * 365 + 90) * DAY_MS == 102_384_000_000
    assert "audit" in t.retention_reason and "3 years" in t.retention_reason


def test_player_state_is_shorter_than_listening() -> None:
    assert topic_spec("player").retention_ms == 30 * DAY_MS < topic_spec("listening").retention_ms


def test_keys_topic_is_compacted_and_drops_tombstones() -> None:
    t = topic_spec("pii.keys")
    assert t.cleanup_policy == "compact" and t.derived
    assert t.config()["delete.retention.ms"] == str(DAY_MS)
    assert set(t.retention_config()) == {"cleanup.policy", "retention.ms", "delete.retention.ms"}
