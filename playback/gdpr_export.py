"""The GDPR export, read from the log: ``playlog gdpr export USER_ID`` and ``GET /v1/me/export``.

Reads the source topics a user's data is on (users, listening, player, playlists, library,
credentials, and catalog for the taste profile's artists and genres) from the beginning to their
current end, opens sealed personal fields with the keys of ``pii.keys`` (topics/pii_keys.py) and
builds the document with :func:`processors.gdpr.build_export`. An erased user's names read as None.
Records that do not decode are skipped (they are in the dead-letter topic's care, not the user's).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

import click

from core import pii
from core.settings import Settings, load
from processors.gdpr import build_export
from schemas.codec import default_codec
from topics.kafka_io import iter_batches
from topics.pii_keys import read_keys

log = logging.getLogger(__name__)

EXPORT_TOPICS = ("users", "listening", "player", "playlists", "library", "credentials", "catalog")


def read_events(settings: Settings, names: tuple[str, ...] = EXPORT_TOPICS) -> dict[str, list[dict]]:
    codec = default_codec()
    by_full = {settings.topic_prefix + n: n for n in names}
    out: dict[str, list[dict]] = {n: [] for n in names}
    for batch in iter_batches(settings, list(by_full)):
        for rec in sorted(batch, key=lambda r: (r.topic, r.partition, r.offset)):
            if rec.value is None:
                continue
            try:
                out[by_full[rec.topic]].append(codec.decode(rec.value))
            except Exception as exc:  # noqa: BLE001 - a bad record is not the user's data
                log.debug("%s[%d]@%d skipped: %s", rec.topic, rec.partition, rec.offset, exc)
    return out


def export_user(settings: Settings, user_id: str, now_ms: int | None = None) -> dict[str, Any]:
    keys = read_keys(settings)

    def read(uid: str, field: str, value: str | None) -> str | None:
        return pii.read_field(lambda u, k: keys.get((u, k)), uid, field, value)

    now = int(time.time() * 1000) if now_ms is None else now_ms
    return build_export(user_id, read_events(settings), read, now)


@click.group("gdpr")
def gdpr_group() -> None:
    """GDPR: what is held about a user (export); erasure is the user.erasure_requested event."""


@gdpr_group.command("export")
@click.argument("user_id")
def export_command(user_id: str) -> None:
    """Write everything held about USER_ID as JSON on stdout (profile, devices, plays, player,
    playlists, library, taste, credentials)."""
    doc = export_user(load(), user_id)
    json.dump(doc, sys.stdout, indent=1, sort_keys=True, default=str)
    sys.stdout.write("\n")
