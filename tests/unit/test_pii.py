"""The crypto-shredding envelope (core/pii.py): sealed fields open only with their user's key."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core import pii

KEY = bytes(range(32))


def test_sealed_field_is_ciphertext_and_opens_with_the_key() -> None:
    v = pii.seal(KEY, "k1", "u1", "display_name", "Ada Lovelace")
    assert v.startswith("pii:v1:k1:") and "Ada" not in v
    assert pii.open_sealed(KEY, "u1", "display_name", v) == "Ada Lovelace"
    # independent check of the format: base64url(nonce + AES-GCM), aad "user\nfield"
    body = v.split(":", 3)[3]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    assert AESGCM(KEY).decrypt(raw[:12], raw[12:], b"u1\ndisplay_name") == b"Ada Lovelace"


def test_value_moved_to_another_user_or_field_or_key_does_not_open() -> None:
    v = pii.seal(KEY, "k1", "u1", "display_name", "Ada")
    assert pii.open_sealed(KEY, "u2", "display_name", v) is None
    assert pii.open_sealed(KEY, "u1", "name", v) is None
    assert pii.open_sealed(bytes(32), "u1", "display_name", v) is None
    assert pii.open_sealed(KEY, "u1", "display_name", "pii:v1:k1:garbage!") is None


def test_read_field_without_the_key_is_absent() -> None:
    v = pii.seal(KEY, "k1", "u1", "name", "Ada's phone")
    keys = {("u1", "k1"): KEY}
    assert pii.read_field(lambda u, k: keys.get((u, k)), "u1", "name", v) == "Ada's phone"
    keys.clear()  # shredded
    assert pii.read_field(lambda u, k: keys.get((u, k)), "u1", "name", v) is None
    assert pii.read_field(lambda u, k: None, "u1", "name", "plain") == "plain"
    assert pii.read_field(lambda u, k: None, "u1", "name", None) is None


def test_wrapped_key_round_trip_and_wrong_master() -> None:
    kek = pii.derive_kek("master")
    value = pii.wrap_key(kek, "u1", "k1", KEY)
    assert KEY.hex() not in value.hex()
    assert pii.unwrap_key(kek, value) == ("u1", "k1", KEY)
    assert pii.unwrap_key(pii.derive_kek("other"), value) is None
    assert pii.derive_kek("master") != pii.derive_kek(b"other")


def test_seal_event_seals_only_personal_fields() -> None:
    reg = {"type": "user.registered", "user_id": "u1", "country": "DE", "product": "premium",
           "display_name": "Ada", "event_id": "e", "occurred_at": 1}
    dev = {"type": "device.registered", "user_id": "u1", "device_id": "d", "device_type": "phone", "name": "Ph"}
    play = {"type": "play.started", "user_id": "u1", "track_id": "t"}
    calls = []

    def key_for(user: str) -> tuple[str, bytes]:
        calls.append(user)
        return "k1", KEY

    s = pii.seal_event(reg, key_for)
    assert {k: v for k, v in s.items() if k != "display_name"} == {k: v for k, v in reg.items() if k != "display_name"}
    assert pii.open_sealed(KEY, "u1", "display_name", s["display_name"]) == "Ada"
    assert pii.seal_event(s, key_for) == s  # already sealed: unchanged
    d = pii.seal_event(dev, key_for)
    assert pii.open_sealed(KEY, "u1", "name", d["name"]) == "Ph" and d["device_type"] == "phone"
    assert pii.seal_event(play, key_for) == play
    assert calls == ["u1", "u1"]


def test_open_event_gives_back_the_produced_event() -> None:
    reg = {"type": "user.registered", "user_id": "u1", "country": "DE", "product": "premium", "display_name": "Ada"}
    sealed = pii.seal_event(reg, lambda u: ("k1", KEY))
    assert sealed != reg
    assert pii.open_event(sealed, lambda u, k: KEY if (u, k) == ("u1", "k1") else None) == reg
    assert pii.open_event(sealed, lambda u, k: None)["display_name"] is None
