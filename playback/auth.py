"""Bearer tokens: HMAC-signed (JWT, HS256 via PyJWT), expiring, carrying the user id and scopes.

A token is a compact JWT with claims ``sub`` (user id), ``iat`` and ``exp`` (Unix seconds),
``scope`` (space-separated, OAuth style; may be empty) and ``typ: "access"``.

The HMAC key is derived from the configured secret (PLAYLOG_TOKEN_SECRET) as
``HMAC-SHA256(secret, "playlog bearer token v1")``: a 32-byte key as RFC 7518 asks for HS256, and
a key used for nothing else. (Derivation adds no entropy: use a long random secret in production.)

Verification is pure: PyJWT checks the signature and the algorithm; the time checks are done here
against the injected ``now`` (Unix seconds). A token is valid while ``iat - LEEWAY <= now < exp``.
The API turns a failed :class:`TokenCheck` into 401 with ``{"error": {"status": 401, "message": reason}}``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
DEFAULT_TTL = 3600
# Tolerated clock skew for a token issued "in the future" by another host.
LEEWAY = 30
DEFAULT_SCOPES: tuple[str, ...] = (
    "user-read-playback-state",
    "user-modify-playback-state",
    "streaming",
    "playlist-modify-public",
    "playlist-read-private",
)

# Reasons, worded like the Spotify Web API's 401 messages.
NO_TOKEN = "No token provided"
INVALID = "Invalid access token"
EXPIRED = "The access token expired"


@dataclass(frozen=True)
class TokenCheck:
    """``user_id`` and ``scopes`` when valid; otherwise ``user_id`` is None and ``reason`` says why."""

    user_id: str | None
    scopes: frozenset[str] = frozenset()
    reason: str = "ok"
    expires_at: int | None = None

    @property
    def ok(self) -> bool:
        return self.user_id is not None


def _key(secret: str | bytes) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else secret
    if not raw:
        raise ValueError("the token secret must not be empty (PLAYLOG_TOKEN_SECRET)")
    return hmac.new(raw, b"playlog bearer token v1", hashlib.sha256).digest()


def issue_token(
    user_id: str,
    secret: str | bytes,
    *,
    now: float,
    ttl: int = DEFAULT_TTL,
    scopes: tuple[str, ...] | list[str] = DEFAULT_SCOPES,
) -> str:
    """A signed token for ``user_id`` valid for ``ttl`` seconds from ``now``."""
    if not isinstance(user_id, str) or not user_id.strip() or user_id != user_id.strip():
        raise ValueError("user id must be a non-empty string without surrounding spaces")
    if ttl <= 0:
        raise ValueError("ttl must be > 0 seconds")
    for scope in scopes:
        if not scope or " " in scope:
            raise ValueError(f"bad scope {scope!r}: scopes are non-empty words")
    iat = int(now)
    claims = {"sub": user_id, "iat": iat, "exp": iat + int(ttl), "scope": " ".join(scopes), "typ": "access"}
    return jwt.encode(claims, _key(secret), algorithm=ALGORITHM)


def verify_token(token: str | None, secret: str | bytes, *, now: float) -> TokenCheck:
    """Check a token at time ``now``: signature, algorithm, claims, expiry."""
    if not token:
        return TokenCheck(None, reason=NO_TOKEN)
    try:
        claims = jwt.decode(
            token,
            _key(secret),
            algorithms=[ALGORITHM],
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["sub", "iat", "exp"],
            },
        )
    except jwt.InvalidTokenError:
        return TokenCheck(None, reason=INVALID)
    sub, iat, exp, scope = claims.get("sub"), claims.get("iat"), claims.get("exp"), claims.get("scope", "")
    if (
        not isinstance(sub, str)
        or not sub
        or type(iat) is not int
        or type(exp) is not int
        or not isinstance(scope, str)
        or claims.get("typ", "access") != "access"
    ):
        return TokenCheck(None, reason=INVALID)
    if now < iat - LEEWAY:
        return TokenCheck(None, reason=INVALID)
    if now >= exp:
        return TokenCheck(None, reason=EXPIRED)
    return TokenCheck(sub, frozenset(scope.split()), reason="ok", expires_at=exp)


def bearer_from_header(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None (missing / other scheme)."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def check_authorization(header: str | None, secret: str | bytes, *, now: float) -> TokenCheck:
    """Verify an ``Authorization`` header value: a missing header or a non-Bearer scheme -> NO_TOKEN."""
    token = bearer_from_header(header)
    if token is None:
        return TokenCheck(None, reason=NO_TOKEN)
    return verify_token(token, secret, now=now)
