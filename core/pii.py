"""Crypto-shredding of personal fields: the pure envelope format (no broker, no I/O).

Each user has a random AES-256 key (a *data key*, id ``kid``). Personal fields of the events that
carry them (:data:`PII_FIELDS`: display names, device names) are sealed with it before the event
leaves the producer, so every copy of them -- the users topic (kept forever), older ``view.users``
records, the worker's changelog and RocksDB files, the Parquet archive, DuckDB -- is ciphertext.
The data keys live in the compacted ``pii.keys`` topic, each *wrapped* (AES-GCM) with a key-encryption
key derived from PLAYLOG_PII_MASTER_KEY. An erasure tombstones the user's keys: compaction then removes
them from the log and every sealed field of that user can no longer be read, anywhere.

Formats (all ASCII):

- sealed field: ``"pii:v1:<kid>:<base64url(nonce + ciphertext + tag)>"``; AES-256-GCM, a random
  96-bit nonce, associated data ``"<user_id>\\n<field>"`` (a value moved to another user or field
  does not open);
- wrapped key (the value of a ``pii.keys`` record, JSON): ``{"user_id", "kid", "wrapped"}`` with
  ``wrapped = base64url(nonce + AES-GCM(kek, data key, aad "<user_id>\\n<kid>"))``;
- ``pii.keys`` record key: ``"<user_id>|<kid>"`` (two producers racing on a new user each keep
  their own key; an erasure tombstones every key of the user).

A reader that has no key for a sealed value (erased user, or a key it cannot unwrap) reads it as
absent (``None``); :data:`ERASED` is the text shown where a name must be shown.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "pii:v1:"
NONCE_BYTES = 12
KEY_BYTES = 32
ERASED = "[erased]"

# event type -> its personal (string) fields
PII_FIELDS: Mapping[str, tuple[str, ...]] = {
    "user.registered": ("display_name",),
    "device.registered": ("name",),
}

KeyLookup = Callable[[str, str], "bytes | None"]  # (user_id, kid) -> data key, None when shredded/unknown


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def derive_kek(master_key: str | bytes) -> bytes:
    """The key-encryption key of the data keys: HKDF-SHA256 of the master key (its own info string,
    so it is not the Subsonic password key)."""
    raw = master_key.encode() if isinstance(master_key, str) else master_key
    if not raw:
        raise ValueError("the PII master key must not be empty (PLAYLOG_PII_MASTER_KEY)")
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=b"playlog", info=b"pii data key wrap v1").derive(raw)


def new_data_key() -> tuple[str, bytes]:
    """A fresh ``(kid, data key)``."""
    return secrets.token_hex(8), secrets.token_bytes(KEY_BYTES)


def record_key(user_id: str, kid: str) -> str:
    return f"{user_id}|{kid}"


def wrap_key(kek: bytes, user_id: str, kid: str, data_key: bytes) -> bytes:
    """The ``pii.keys`` record value of a data key (JSON bytes)."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(kek).encrypt(nonce, data_key, f"{user_id}\n{kid}".encode())
    return json.dumps({"user_id": user_id, "kid": kid, "wrapped": _b64(nonce + sealed)},
                      separators=(",", ":")).encode()


def unwrap_key(kek: bytes, value: bytes) -> tuple[str, str, bytes] | None:
    """``(user_id, kid, data key)`` of a ``pii.keys`` record value; None if it is not one this
    master key wrapped."""
    try:
        doc = json.loads(value)
        raw = _unb64(doc["wrapped"])
        key = AESGCM(kek).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], f"{doc['user_id']}\n{doc['kid']}".encode())
        return str(doc["user_id"]), str(doc["kid"]), key
    except (InvalidTag, ValueError, KeyError, TypeError):
        return None


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def kid_of(value: str) -> str | None:
    if not is_sealed(value):
        return None
    kid, sep, _ = value[len(PREFIX):].partition(":")
    return kid if sep else None


def seal(data_key: bytes, kid: str, user_id: str, field: str, plaintext: str) -> str:
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(data_key).encrypt(nonce, plaintext.encode(), f"{user_id}\n{field}".encode())
    return f"{PREFIX}{kid}:{_b64(nonce + sealed)}"


def open_sealed(data_key: bytes, user_id: str, field: str, value: str) -> str | None:
    """The plaintext of a sealed value, or None when it does not open with this key for that user and field."""
    if not is_sealed(value):
        return None
    _, sep, body = value[len(PREFIX):].partition(":")
    try:
        raw = _unb64(body)
        if not sep or len(raw) <= NONCE_BYTES:
            return None
        return AESGCM(data_key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], f"{user_id}\n{field}".encode()).decode()
    except (InvalidTag, ValueError, UnicodeDecodeError):
        return None


def read_field(lookup: KeyLookup, user_id: str, field: str, value: str | None) -> str | None:
    """What a reader shows for a personal field: plaintext as is (data from before sealing), a sealed
    value opened with the user's key, None when the key is gone (erased) or the value does not open."""
    if value is None or not is_sealed(value):
        return value
    kid = kid_of(value)
    key = lookup(user_id, kid) if kid else None
    return open_sealed(key, user_id, field, value) if key is not None else None


def seal_event(event: Mapping[str, Any], key_for: Callable[[str], tuple[str, bytes]]) -> dict[str, Any]:
    """The event with its personal fields sealed under its user's data key (``key_for(user_id) ->
    (kid, key)``); events without personal fields, and fields already sealed or null, are kept."""
    fields = PII_FIELDS.get(event.get("type", ""), ())
    todo = [f for f in fields if isinstance(event.get(f), str) and not is_sealed(event[f])]
    if not todo:
        return dict(event)
    user_id = event["user_id"]
    kid, key = key_for(user_id)
    out = dict(event)
    for f in todo:
        out[f] = seal(key, kid, user_id, f, event[f])
    return out


def open_event(event: Mapping[str, Any], lookup: KeyLookup) -> dict[str, Any]:
    """The event with its sealed personal fields opened (None where the key is gone): what it was
    before the producer sealed it, for readers and for tests comparing what was produced."""
    fields = PII_FIELDS.get(event.get("type", ""), ())
    out = dict(event)
    for f in fields:
        if is_sealed(out.get(f)):
            out[f] = read_field(lookup, event["user_id"], f, out[f])
    return out
