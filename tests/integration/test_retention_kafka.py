"""`playlog topics create` applies the catalog's retention on the real broker (issue 15)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from confluent_kafka.admin import AdminClient, ConfigResource

from core.settings import Settings
from topics.topic_catalog import load_catalog

PLAYLOG = str(Path(sys.executable).with_name("playlog"))
DAY_MS = 86_400_000


def _configs(settings: Settings) -> dict[str, dict[str, str]]:
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    res = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, settings.topic_prefix + t.name)
                                  for t in load_catalog()])
    return {r.name: {k: v.value for k, v in f.result(30).items()} for r, f in res.items()}


def _create(settings: Settings) -> str:
    r = subprocess.run([PLAYLOG, "topics", "create"], env=os.environ.copy(), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_stated_retention_is_what_the_cluster_has(kafka_env: Settings) -> None:
    p = kafka_env.topic_prefix
    _create(kafka_env)
    got = _configs(kafka_env)
    # independent expectations (days, not the catalog's numbers)
    assert got[p + "listening"]["retention.ms"] == str((3 * 365 + 90) * DAY_MS)
    assert got[p + "player"]["retention.ms"] == str(30 * DAY_MS)
    assert got[p + "pii.keys"]["cleanup.policy"] == "compact"
    assert got[p + "pii.keys"]["delete.retention.ms"] == str(DAY_MS)
    assert got[p + "view.users"]["cleanup.policy"] == "compact"
    for t in load_catalog():
        for k, v in t.retention_config().items():
            assert got[p + t.name][k] == v, (t.name, k)

    # a topic whose retention drifted (changed by hand) is set back by `playlog topics create`
    admin = AdminClient({"bootstrap.servers": kafka_env.bootstrap_servers})
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry
    drift = ConfigResource(ConfigResource.Type.TOPIC, p + "player", incremental_configs=[
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
    for f in admin.incremental_alter_configs([drift]).values():
        f.result(30)
    assert _configs(kafka_env)[p + "player"]["retention.ms"] == "1000"
    out = _create(kafka_env)
    assert f"{p}player retention.ms={30 * DAY_MS}" in out
    assert _configs(kafka_env)[p + "player"]["retention.ms"] == str(30 * DAY_MS)
