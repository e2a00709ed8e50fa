"""The API renders a sealed device name in clear with its key, and as null once the key is shredded."""

from __future__ import annotations

import time

from core import pii
from playback import pii_reader, render

KEY = bytes(range(32))


def test_device_object_opens_sealed_names() -> None:
    r = pii_reader.reader()
    r._keys, r._read_at = {("u1", "k1"): KEY}, time.monotonic()  # loaded now: no read of the topic
    user = {"user_id": "u1", "devices": [{"device_id": "ph", "device_type": "phone",
                                          "name": pii.seal(KEY, "k1", "u1", "name", "Ada's phone")}]}
    state = {"volumes": {}}
    assert render.device_object(user, "ph", state)["name"] == "Ada's phone"
    other = {"user_id": "u2", "devices": [{**user["devices"][0]}]}  # moved to another user: does not open
    assert render.device_object(other, "ph", state)["name"] is None
    r._keys = {}  # shredded
    assert render.device_object(user, "ph", state)["name"] is None
    plain = {"user_id": "u1", "devices": [{"device_id": "ph", "device_type": "phone", "name": "Old plain"}]}
    assert render.device_object(plain, "ph", state)["name"] == "Old plain"


def test_unreachable_broker_leaves_sealed_fields_absent_not_an_error() -> None:
    """No broker listens on the port: the key read fails (KafkaException from the metadata request) and
    the field reads as absent, as the module promises, instead of the route answering 500."""
    from core.settings import Settings
    from devstack.supervisor import free_port

    r = pii_reader.PiiReader(Settings(bootstrap_servers=f"127.0.0.1:{free_port()}"))
    sealed = pii.seal(KEY, "k1", "u1", "name", "Ada's phone")
    assert r.read("u1", "name", sealed) is None
