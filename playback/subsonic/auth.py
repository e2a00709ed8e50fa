"""Who is calling: the Subsonic and OpenSubsonic authentication schemes, checked against app passwords.

The Subsonic user name is the playlog user id. Credentials are app passwords (``playlog subsonic
password USER_ID``), folded by the worker into ``view.credentials`` (encrypted, see
playback/subsonic/secrets.py) and read here from the API's replica; a revoked password stops working
as soon as the revocation's view document reaches the replica.

Schemes (:func:`attempt_of` reads them from the parameters, the OpenSubsonic rules):

- ``apiKey`` (extension ``apiKeyAuthentication``): the app password itself; together with ``u``,
  ``p``, ``t`` or ``s`` it is refused with code 43 (conflicting mechanisms); an unknown key: 44;
- ``u`` + ``t`` + ``s``: ``t == md5(password + s)`` (hex, any case) for one of the user's active
  passwords;
- ``u`` + ``p``: the password in clear, or ``enc:`` + its UTF-8 bytes in hex;
- ``p`` with ``t``: 43; no ``u`` (without ``apiKey``), or neither ``p`` nor ``t``/``s``: 10 (missing
  parameter); a wrong password or an unknown user: 40 (the answer does not tell which).

Comparisons are constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from dataclasses import dataclass
from typing import Any

from playback.subsonic.params import Params
from playback.subsonic.render import Code, SubsonicError
from playback.subsonic.secrets import PasswordBox

log = logging.getLogger(__name__)

MAX_CACHED = 100_000


@dataclass(frozen=True)
class Attempt:
    """The credentials a request carries: ``kind`` is ``apikey``, ``token`` or ``password``."""

    kind: str
    user: str | None = None
    secret: str = ""  # the api key, the token or the password
    salt: str = ""


def token_of(password: str, salt: str) -> str:
    """The Subsonic token of a password and a salt: ``md5(password + salt)`` in lower-case hex."""
    return hashlib.md5((password + salt).encode("utf-8")).hexdigest()  # noqa: S324 - the Subsonic protocol


def token_matches(password: str, salt: str, token: str) -> bool:
    return hmac.compare_digest(token_of(password, salt).encode(), token.strip().lower().encode())


def decode_password(p: str) -> str:
    """A ``p`` parameter in clear or ``enc:``-hex form -> the password (an undecodable ``enc:`` value is
    taken as it is, and so fails to match)."""
    if p.startswith("enc:"):
        try:
            return bytes.fromhex(p[4:]).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return p
    return p


def attempt_of(params: Params) -> Attempt:
    """The authentication attempt of a request, or SubsonicError (10, 43) when it is not a valid one."""
    api_key = params.str("apiKey")
    if api_key is not None:
        if any(name in params for name in ("u", "p", "t", "s")):
            raise SubsonicError(Code.CONFLICTING_AUTH, "Multiple conflicting authentication mechanisms provided: "
                                                       "apiKey goes without u, p, t and s")
        if not api_key.strip():
            raise SubsonicError(Code.INVALID_API_KEY)
        return Attempt("apikey", secret=api_key.strip())
    user = params.str("u")
    if user is None or not user.strip():
        raise SubsonicError(Code.MISSING_PARAMETER, "Required parameter 'u' is missing (or give an apiKey)")
    token, salt, password = params.str("t"), params.str("s"), params.str("p")
    if token is not None and password is not None:
        raise SubsonicError(Code.CONFLICTING_AUTH, "Multiple conflicting authentication mechanisms provided: "
                                                   "p goes without t and s")
    if token is not None or salt is not None:
        if not token or not salt:
            raise SubsonicError(Code.MISSING_PARAMETER, "Token authentication needs both 't' and 's'")
        return Attempt("token", user, token, salt)
    if password is None:
        raise SubsonicError(Code.MISSING_PARAMETER, "Required parameter 'p' (or 't' and 's') is missing")
    return Attempt("password", user, decode_password(password))


class Authenticator:
    """Checks attempts against the active app passwords of the replica's ``credentials`` documents.

    Plaintexts are decrypted on first use and cached per (user, password id, ciphertext); the apiKey
    index (SHA-256 of each active password -> user and password id) is brought up to date from the
    users whose documents changed (:meth:`playback.replica_state.ReplicaState.take_credentials_changes`)
    when a key is not found, and every hit is checked against the current document (so a revoked key
    fails at once, whatever the index still holds)."""

    def __init__(self, replica: Any, master_key: str | bytes) -> None:
        self.replica = replica
        self.box = PasswordBox(master_key)
        self._plain: dict[tuple[str, str, str], str | None] = {}
        self._index: dict[str, tuple[str, str]] = {}
        self._hashes: dict[str, set[str]] = {}  # user -> keys of the index
        self._lock = threading.Lock()

    def _active(self, user: str) -> list[dict]:
        doc = self.replica.credentials.get(user)
        return list(doc.get("passwords") or []) if doc else []

    def _open(self, user: str, row: dict) -> str | None:
        key = (user, row["password_id"], row["ciphertext"])
        if key not in self._plain:
            if len(self._plain) >= MAX_CACHED:
                self._plain.clear()
            plain = self.box.open(user, row["password_id"], row["ciphertext"])
            if plain is None:
                log.warning("app password %s of %r does not decrypt with this PLAYLOG_PII_MASTER_KEY",
                            row["password_id"], user)
            self._plain[key] = plain
        return self._plain[key]

    def passwords(self, user: str) -> list[tuple[str, str]]:
        """``(password_id, password)`` of the user's active app passwords."""
        out = []
        for row in self._active(user):
            plain = self._open(user, row)
            if plain is not None:
                out.append((row["password_id"], plain))
        return out

    def _reindex(self) -> None:
        for user in self.replica.take_credentials_changes():
            for h in self._hashes.pop(user, ()):
                self._index.pop(h, None)
            hashes = set()
            for pid, plain in self.passwords(user):
                h = hashlib.sha256(plain.encode()).hexdigest()
                self._index[h] = (user, pid)
                hashes.add(h)
            if hashes:
                self._hashes[user] = hashes

    def _by_key(self, api_key: str) -> str | None:
        h = hashlib.sha256(api_key.encode()).hexdigest()
        hit = self._index.get(h)
        if hit is None:
            self._reindex()
            hit = self._index.get(h)
        if hit is None:
            return None
        user, pid = hit
        for active_pid, plain in self.passwords(user):
            if active_pid == pid and hmac.compare_digest(plain.encode(), api_key.encode()):
                return user
        return None

    def authenticate(self, params: Params) -> str:
        """The user id the request's credentials prove, or SubsonicError (10, 40, 43, 44)."""
        attempt = attempt_of(params)
        with self._lock:
            if attempt.kind == "apikey":
                user = self._by_key(attempt.secret)
                if user is None:
                    raise SubsonicError(Code.INVALID_API_KEY)
                return user
            user = attempt.user or ""
            ok = False
            for _pid, plain in self.passwords(user):
                if attempt.kind == "token":
                    ok = token_matches(plain, attempt.salt, attempt.secret) or ok
                else:
                    ok = hmac.compare_digest(plain.encode(), attempt.secret.encode()) or ok
            if not ok:
                raise SubsonicError(Code.WRONG_CREDENTIALS)
            return user

