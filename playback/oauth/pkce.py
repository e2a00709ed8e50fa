"""PKCE (RFC 7636): the verifier's syntax and the S256 check. Pure."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

# RFC 7636 section 4.1: 43..128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"
VERIFIER_RE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# base64url without padding of a 32-byte SHA-256 digest
CHALLENGE_RE = re.compile(r"[A-Za-z0-9_-]{43}")
METHODS = ("S256",)  # "plain" is refused (Spotify accepts S256 only)


def s256(verifier: str) -> str:
    """``BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))`` without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def valid_challenge(challenge: str | None, method: str | None) -> bool:
    return method in METHODS and challenge is not None and CHALLENGE_RE.fullmatch(challenge) is not None


def verify(verifier: str | None, challenge: str, method: str = "S256") -> bool:
    """True when ``verifier`` is well formed and hashes (S256) to ``challenge``; constant-time compare."""
    if method not in METHODS or not verifier or not VERIFIER_RE.fullmatch(verifier):
        return False
    return hmac.compare_digest(s256(verifier).encode(), challenge.encode())
