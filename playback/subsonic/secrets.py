"""App passwords of the Subsonic API: generated, encrypted for the log, decrypted by the API.

Subsonic token auth sends ``t = md5(password + s)`` with a fresh salt ``s``: the server can check it
only with the plaintext password at hand. So an app password is kept **encrypted**, never hashed:

- key: HKDF-SHA256 of PLAYLOG_PII_MASTER_KEY (salt ``playlog``, info ``subsonic app password v1``),
  32 bytes, used for nothing else;
- cipher: AES-256-GCM (``cryptography``'s AEAD), a random 96-bit nonce per password, the associated
  data ``"<user_id>\\n<password_id>"`` so a ciphertext moved to another user or id does not decrypt;
- ``ciphertext`` field of ``app_password.issued``: ``"v1." + base64url(nonce + ciphertext + tag)``.

A password is 24 characters of base64url (144 random bits): typed once into a client, or pasted, and
used both as the Subsonic password (token + salt, or ``p``) and as the OpenSubsonic ``apiKey``.
"""

from __future__ import annotations

import base64
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"
NONCE_BYTES = 12
PASSWORD_BYTES = 18  # 24 base64url characters
PASSWORD_ID_BYTES = 6  # 12 hex digits


def derive_key(master_key: str | bytes) -> bytes:
    raw = master_key.encode() if isinstance(master_key, str) else master_key
    if not raw:
        raise ValueError("the PII master key must not be empty (PLAYLOG_PII_MASTER_KEY)")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"playlog", info=b"subsonic app password v1").derive(raw)


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def new_password_id() -> str:
    return secrets.token_hex(PASSWORD_ID_BYTES)


def _aad(user_id: str, password_id: str) -> bytes:
    return f"{user_id}\n{password_id}".encode()


class PasswordBox:
    """Encrypt and decrypt app passwords with the key derived from the PII master key."""

    def __init__(self, master_key: str | bytes) -> None:
        self._aead = AESGCM(derive_key(master_key))

    def seal(self, user_id: str, password_id: str, password: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, password.encode(), _aad(user_id, password_id))
        return f"{VERSION}." + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")

    def open(self, user_id: str, password_id: str, ciphertext: str) -> str | None:
        """The password, or None when the ciphertext is not one this key sealed for that user and id."""
        version, _, body = ciphertext.partition(".")
        if version != VERSION or not body:
            return None
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            if len(raw) <= NONCE_BYTES:
                return None
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(user_id, password_id))
            return plain.decode()
        except (InvalidTag, ValueError, UnicodeDecodeError):
            return None
