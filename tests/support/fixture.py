"""The shared fixture (``../shared/fixtures``: the sample event set and its expected statements),
found relative to the repository, and producing events to the live topics."""

from __future__ import annotations

import json
from pathlib import Path

from core.settings import Settings
from schemas.codec import default_codec
from topics.producer import EventProducer

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
PERIODS = ("2026-04", "2026-05")


def fixture_events() -> list[dict]:
    codec = default_codec()
    return [codec.from_json(json.loads(line)) for line in (FIXTURES / "royalties-sample.jsonl").read_text().splitlines()]


def expected_statement(period: str) -> str:
    return (FIXTURES / f"royalties-sample-{period}.csv").read_text()


def produce(settings: Settings, events: list[dict], producer: EventProducer | None = None) -> None:
    p = producer or EventProducer(settings)
    for ev in events:
        p.produce(ev)
    p.flush()
