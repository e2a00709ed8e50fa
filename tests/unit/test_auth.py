"""Bearer tokens: issue/verify, expiry boundaries, tampering, wrong keys and algorithms (injected clock)."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from playback import auth

SECRET = "test-token-secret"
NOW = 1_780_000_000


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def test_round_trip_carries_user_scopes_and_expiry():
    token = auth.issue_token(
        "user-1", SECRET, now=NOW, ttl=60, scopes=["streaming", "user-read-playback-state"]
    )
    check = auth.verify_token(token, SECRET, now=NOW)
    assert check.ok and check.user_id == "user-1"
    assert check.scopes == frozenset({"streaming", "user-read-playback-state"})
    assert check.expires_at == NOW + 60 and check.reason == "ok"


def test_default_scopes_and_no_scopes():
    assert auth.verify_token(auth.issue_token("u", SECRET, now=NOW), SECRET, now=NOW).scopes == frozenset(
        auth.DEFAULT_SCOPES
    )
    assert (
        auth.verify_token(auth.issue_token("u", SECRET, now=NOW, scopes=()), SECRET, now=NOW).scopes
        == frozenset()
    )


@pytest.mark.parametrize(
    ("now", "user", "reason"),
    [
        (NOW, "u", "ok"),
        (NOW + 59, "u", "ok"),
        (NOW + 59.999, "u", "ok"),
        (NOW + 60, None, auth.EXPIRED),
        (NOW + 10_000, None, auth.EXPIRED),
        (NOW - auth.LEEWAY, "u", "ok"),  # issued slightly in the future by a skewed clock
        (NOW - auth.LEEWAY - 1, None, auth.INVALID),
    ],
)
def test_expiry_and_issued_at_boundaries(now, user, reason):
    token = auth.issue_token("u", SECRET, now=NOW, ttl=60)
    check = auth.verify_token(token, SECRET, now=now)
    assert (check.user_id, check.reason) == (user, reason)


def test_tampered_payload_is_invalid():
    token = auth.issue_token("alice", SECRET, now=NOW, ttl=60)
    header, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "mallory"
    forged = f"{header}.{_b64(claims)}.{sig}"
    assert auth.verify_token(forged, SECRET, now=NOW) == auth.TokenCheck(None, reason=auth.INVALID)
    claims["sub"], claims["exp"] = "alice", NOW + 10**6  # extending the lifetime
    assert not auth.verify_token(f"{header}.{_b64(claims)}.{sig}", SECRET, now=NOW).ok
    flipped = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")
    assert not auth.verify_token(f"{header}.{payload}.{flipped}", SECRET, now=NOW).ok


def test_wrong_secret_garbage_and_missing():
    token = auth.issue_token("u", SECRET, now=NOW)
    assert auth.verify_token(token, "another-secret", now=NOW).reason == auth.INVALID
    for junk in ("abc", "a.b.c", "....", token + "x", "Bearer " + token):
        assert auth.verify_token(junk, SECRET, now=NOW).reason == auth.INVALID
    assert auth.verify_token("", SECRET, now=NOW).reason == auth.NO_TOKEN
    assert auth.verify_token(None, SECRET, now=NOW).reason == auth.NO_TOKEN


def test_other_algorithms_are_refused():
    claims = {"sub": "u", "iat": NOW, "exp": NOW + 60}
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    assert auth.verify_token(unsigned, SECRET, now=NOW).reason == auth.INVALID
    key = auth._key(SECRET)
    hs512 = jwt.encode(claims, key + key, algorithm="HS512")
    assert auth.verify_token(hs512, SECRET, now=NOW).reason == auth.INVALID
    # the right key and algorithm but claims of the wrong types or missing
    for bad in (
        {"sub": "u", "iat": NOW},
        {"sub": 5, "iat": NOW, "exp": NOW + 60},
        {"sub": "u", "iat": float(NOW), "exp": NOW + 60},
        {"sub": "u", "iat": NOW, "exp": NOW + 60, "typ": "refresh"},
    ):
        token = jwt.encode(bad, key, algorithm="HS256")
        assert auth.verify_token(token, SECRET, now=NOW).reason == auth.INVALID, bad


def test_authorization_header_parsing():
    token = auth.issue_token("u", SECRET, now=NOW)
    assert auth.check_authorization(f"Bearer {token}", SECRET, now=NOW).user_id == "u"
    assert auth.check_authorization(f"bearer   {token} ", SECRET, now=NOW).user_id == "u"
    for header in (None, "", "Bearer", "Bearer ", f"Basic {token}", token):
        assert auth.check_authorization(header, SECRET, now=NOW).reason == auth.NO_TOKEN, header


@pytest.mark.parametrize(
    "kwargs",
    [{"user_id": ""}, {"user_id": " u"}, {"ttl": 0}, {"ttl": -5}, {"scopes": ["a b"]}, {"scopes": [""]}],
)
def test_issue_rejects_bad_input(kwargs):
    args = {"user_id": "u", "ttl": 60, "scopes": ("streaming",)} | kwargs
    with pytest.raises(ValueError):
        auth.issue_token(args["user_id"], SECRET, now=NOW, ttl=args["ttl"], scopes=args["scopes"])
    with pytest.raises(ValueError):
        auth.issue_token("u", "", now=NOW)
