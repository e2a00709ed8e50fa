"""Bearer tokens: HMAC-signed (JWT, HS256 via PyJWT), expiring, carrying the user id and scopes.

A token is a compact JWT with claims ``sub`` (user id), ``iat`` and ``exp`` (Unix seconds),
``scope`` (space-separated, OAuth style; may be empty) and ``typ: "access"``.

Client-credentials tokens (OAuth, playback/oauth/) carry ``sub`` = the client id and ``gty:
"client_credentials"``: :class:`TokenCheck` then has ``user_id`` None and ``client_id`` set (``ok``
is still True: a valid token without a user). User tokens minted by ``/api/token`` also carry
``client_id``. Refresh tokens are JWTs with ``typ: "refresh"``: never accepted as access tokens.

Key rotation (like the CDN keys, playback/signing.py). ``secret`` may be a key ring ``{kid: secret}``
(PLAYLOG_TOKEN_KEYS, see :func:`key_ring`): the first key signs and puts its ``kid`` in the JWT header;
every key verifies. A token whose ``kid`` is not in the ring is invalid; a token without a ``kid``
(signed with a bare secret, as before) is checked against every key of the ring. Rotating is: prepend
a new ``kid:secret`` (it now signs), keep the old one until the tokens it signed expired (refresh
tokens: 30 days), then drop it.

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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from playback.oauth.scopes import ALL_SCOPES

ALGORITHM = "HS256"
DEFAULT_TTL = 3600
# Tolerated clock skew for a token issued "in the future" by another host.
LEEWAY = 30
# ``playlog token`` (and issue_token by default) grants every Spotify scope: a local developer token.
DEFAULT_SCOPES: tuple[str, ...] = ALL_SCOPES

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
    client_id: str | None = None  # the OAuth client the token was issued to (None: ``playlog token``)

    @property
    def ok(self) -> bool:
        return self.reason == "ok"


Secret = str | bytes | Mapping[str, str]
DEFAULT_KID = "t0"  # the kid of PLAYLOG_TOKEN_SECRET when no PLAYLOG_TOKEN_KEYS ring is configured


def key_ring(settings: Any) -> dict[str, str]:
    """The token key ring of ``settings``: PLAYLOG_TOKEN_KEYS when set, else ``{"t0": PLAYLOG_TOKEN_SECRET}``."""
    keys = getattr(settings, "token_keys", None)
    return dict(keys) if keys else {DEFAULT_KID: settings.token_secret}


def _key(secret: str | bytes) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else secret
    if not raw:
        raise ValueError("the token secret must not be empty (PLAYLOG_TOKEN_SECRET)")
    return hmac.new(raw, b"playlog bearer token v1", hashlib.sha256).digest()


def _signing(secret: Secret) -> tuple[bytes, dict[str, str] | None]:
    if isinstance(secret, Mapping):
        if not secret:
            raise ValueError("the token key ring is empty (PLAYLOG_TOKEN_KEYS)")
        kid, raw = next(iter(secret.items()))
        return _key(raw), {"kid": kid}
    return _key(secret), None


def _verifying(secret: Secret, kid: object) -> list[bytes]:
    """The keys a token with header ``kid`` (None: absent) may be signed with."""
    if not isinstance(secret, Mapping):
        return [_key(secret)]
    if kid is None:
        return [_key(raw) for raw in secret.values()]
    raw = secret.get(kid) if isinstance(kid, str) else None
    return [] if raw is None else [_key(raw)]


def issue_token(
    user_id: str,
    secret: Secret,
    *,
    now: float,
    ttl: int = DEFAULT_TTL,
    scopes: tuple[str, ...] | list[str] = DEFAULT_SCOPES,
    client_id: str | None = None,
    grant: str | None = None,
    typ: str = "access",
) -> str:
    """A signed token for ``user_id`` (with ``grant="client_credentials"``: the client ``user_id``)
    valid for ``ttl`` seconds from ``now``; ``secret`` a bare secret or a key ring (first key signs)."""
    if not isinstance(user_id, str) or not user_id.strip() or user_id != user_id.strip():
        raise ValueError("user id must be a non-empty string without surrounding spaces")
    if ttl <= 0:
        raise ValueError("ttl must be > 0 seconds")
    for scope in scopes:
        if not scope or " " in scope:
            raise ValueError(f"bad scope {scope!r}: scopes are non-empty words")
    iat = int(now)
    claims: dict[str, Any] = {"sub": user_id, "iat": iat, "exp": iat + int(ttl), "scope": " ".join(scopes),
                              "typ": typ}
    if client_id is not None:
        claims["client_id"] = client_id
    if grant is not None:
        claims["gty"] = grant
    key, headers = _signing(secret)
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers=headers)


def _decode(token: str, secret: Secret) -> dict | None:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError:
        return None
    options = {"verify_exp": False, "verify_iat": False, "verify_nbf": False, "require": ["sub", "iat", "exp"]}
    for key in _verifying(secret, kid):
        try:
            return jwt.decode(token, key, algorithms=[ALGORITHM], options=options)
        except jwt.InvalidTokenError:
            continue
    return None


def verify_token(token: str | None, secret: Secret, *, now: float, typ: str = "access") -> TokenCheck:
    """Check a token at time ``now``: signature (kid), algorithm, claims, ``typ``, expiry."""
    if not token:
        return TokenCheck(None, reason=NO_TOKEN)
    claims = _decode(token, secret)
    if claims is None:
        return TokenCheck(None, reason=INVALID)
    sub, iat, exp, scope = claims.get("sub"), claims.get("iat"), claims.get("exp"), claims.get("scope", "")
    client_id = claims.get("client_id")
    if (
        not isinstance(sub, str)
        or not sub
        or type(iat) is not int
        or type(exp) is not int
        or not isinstance(scope, str)
        or claims.get("typ", "access") != typ
        or not (client_id is None or isinstance(client_id, str))
    ):
        return TokenCheck(None, reason=INVALID)
    if now < iat - LEEWAY:
        return TokenCheck(None, reason=INVALID)
    if now >= exp:
        return TokenCheck(None, reason=EXPIRED)
    if claims.get("gty") == "client_credentials":
        return TokenCheck(None, frozenset(scope.split()), reason="ok", expires_at=exp, client_id=sub)
    return TokenCheck(sub, frozenset(scope.split()), reason="ok", expires_at=exp, client_id=client_id)


def bearer_from_header(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None (missing / other scheme)."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def check_authorization(header: str | None, secret: Secret, *, now: float) -> TokenCheck:
    """Verify an ``Authorization`` header value: a missing header or a non-Bearer scheme -> NO_TOKEN."""
    token = bearer_from_header(header)
    if token is None:
        return TokenCheck(None, reason=NO_TOKEN)
    return verify_token(token, secret, now=now)
