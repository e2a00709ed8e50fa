"""Issuing and checking play grants (the server-issued ``play_id`` of a manifest), and the API's
bounded memory of client event ids.

The grant's format and the rule every reader applies to client events are pure and live in
processors/grants.py; here is what needs the key: the signature, ``HMAC-SHA256(key, body)``
truncated to 16 bytes, with ``key = HMAC-SHA256(PLAYLOG_TOKEN_SECRET, "play-grant")`` (a key used
for nothing else, as the bearer tokens derive theirs). A grant is stateless: issuing one costs an
HMAC, no Kafka round trip and no table on the manifest path; checking one costs an HMAC too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import weakref
from typing import Any

from processors.grants import NONCE_CHARS, SIG_BYTES, GrantClaims, format_grant, grant_body, parse_grant

#: how many client event ids one API process remembers (about 30 MB of ids): a client event whose id
#: is among them is refused. Older ids, or ids seen by another API process, are not caught here.
MAX_RECENT_EVENT_IDS = 250_000

NOT_ISSUED = "play_id is not a server-issued play (a client play needs the play_id of its manifest)"
BAD_SIGNATURE = "play_id is not a server-issued play: its signature does not match"


def grant_key(token_secret: str | bytes) -> bytes:
    raw = token_secret.encode() if isinstance(token_secret, str) else token_secret
    if not raw:
        raise ValueError("the token secret must not be empty (PLAYLOG_TOKEN_SECRET)")
    return hmac.new(raw, b"play-grant", hashlib.sha256).digest()


class PlayGrants:
    """Issue and verify play grants with the key derived from the token secret."""

    def __init__(self, token_secret: str | bytes):
        self._key = grant_key(token_secret)

    def _sig(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest()[:SIG_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def issue(self, user_id: str, track_id: str, issued_ms: int, nonce: str | None = None) -> str:
        """A new grant for ``user_id`` playing ``track_id`` (use the canonical id), issued now."""
        if nonce is None:
            nonce = base64.urlsafe_b64encode(secrets.token_bytes(NONCE_CHARS * 3 // 4)).decode("ascii")
        body = grant_body(user_id, track_id, issued_ms, nonce)
        return format_grant(user_id, track_id, issued_ms, nonce, self._sig(body))

    def verify(self, play_id: object) -> tuple[GrantClaims | None, str]:
        """``(claims, "ok")`` for a grant this key signed; ``(None, reason)`` otherwise (constant-time
        compare). Binding (user, track) and time are checked by the caller."""
        claims = parse_grant(play_id)
        if claims is None:
            return None, NOT_ISSUED
        if not hmac.compare_digest(self._sig(claims.body).encode("ascii"), claims.sig.encode("ascii")):
            return None, BAD_SIGNATURE
        return claims, "ok"


class RecentIds:
    """A bounded set of ids, oldest forgotten first (insertion order)."""

    def __init__(self, capacity: int = MAX_RECENT_EVENT_IDS):
        if capacity <= 0:
            raise ValueError("capacity must be > 0")
        self.capacity = capacity
        self._ids: dict[str, None] = {}

    def __contains__(self, item: str) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, item: str) -> bool:
        """Remember ``item``; False (and nothing changes) when it is already remembered."""
        ids = self._ids
        if item in ids:
            return False
        if len(ids) >= self.capacity:
            del ids[next(iter(ids))]
        ids[item] = None
        return True

    def discard(self, item: str) -> None:
        self._ids.pop(item, None)


class ClientTrust:
    """What one API process keeps for the trust boundary: its grant key and the client event ids it
    accepted recently."""

    def __init__(self, token_secret: str | bytes, capacity: int = MAX_RECENT_EVENT_IDS):
        self.grants = PlayGrants(token_secret)
        self.seen = RecentIds(capacity)


_TRUST: weakref.WeakKeyDictionary[Any, ClientTrust] = weakref.WeakKeyDictionary()


def trust_of(api: Any) -> ClientTrust:
    """The :class:`ClientTrust` of a ``playback.service.PlaybackApi`` (made on first use from its
    settings' token secret, and gone with it)."""
    trust = _TRUST.get(api)
    if trust is None:
        trust = _TRUST[api] = ClientTrust(api.settings.token_secret)
    return trust
