"""CDN URL signing: canonical string, expiry boundaries, tampering, key ids and rotation (pure, injected clock)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playback import signing
from playback.signing import Signer, canonical_string, segment_path

NOW = 1_780_000_000
OLD = {"k1": "old-secret-0123456789"}
ROTATED = {"k2": "new-secret-9876543210", "k1": "old-secret-0123456789"}


def _verify_url(signer: Signer, url: str, now: float) -> signing.Verdict:
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return signer.verify(unquote(parts.path), q.get("exp"), q.get("kid"), q.get("sig"), now=now)


def test_canonical_string_is_path_exp_kid_on_three_lines():
    assert canonical_string("/audio/f1/3", "1700000000", "k1") == b"/audio/f1/3\n1700000000\nk1"
    with pytest.raises(ValueError):
        canonical_string("/audio/f1/3\n", "1", "k1")


def test_signature_matches_the_documented_formula():
    params = Signer(OLD).sign_path("/audio/f1/3", NOW + 60)
    mac = hmac.new(b"old-secret-0123456789", f"/audio/f1/3\n{NOW + 60}\nk1".encode(), hashlib.sha256)
    expected = base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")
    assert params == {"exp": str(NOW + 60), "kid": "k1", "sig": expected}
    assert "=" not in params["sig"] and len(params["sig"]) == 43


def test_signed_url_shape_and_round_trip():
    url = Signer(OLD).sign_segment_url("http://cdn:8701/", "f_01", 7, now=NOW + 0.9, ttl=300)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "cdn:8701", "/audio/f_01/7")
    q = parse_qs(parts.query)
    assert q["exp"] == [str(NOW + 300)] and q["kid"] == ["k1"]
    assert _verify_url(Signer(OLD), url, NOW).ok


@pytest.mark.parametrize(
    ("now", "ok", "reason"),
    [
        (NOW - 10_000, True, signing.OK),
        (NOW + 99, True, signing.OK),
        (NOW + 99.999, True, signing.OK),
        (NOW + 100, False, signing.EXPIRED),
        (NOW + 101, False, signing.EXPIRED),
    ],
)
def test_expiry_boundary(now, ok, reason):
    signer = Signer(OLD)
    q = signer.sign_path("/audio/f1/0", NOW + 100)
    verdict = signer.verify("/audio/f1/0", q["exp"], q["kid"], q["sig"], now=now)
    assert (verdict.ok, verdict.reason) == (ok, reason)


def test_tampering_is_refused():
    signer = Signer(OLD)
    q = signer.sign_path("/audio/f1/0", NOW + 100)
    flipped = ("A" if q["sig"][0] != "A" else "B") + q["sig"][1:]
    assert signer.verify("/audio/f1/0", q["exp"], "k1", flipped, now=NOW).reason == signing.MISMATCH
    # a later exp with the old signature
    assert signer.verify("/audio/f1/0", str(NOW + 10_000), "k1", q["sig"], now=NOW).reason == signing.MISMATCH
    # the same number written differently is a different canonical string
    assert signer.verify("/audio/f1/0", "0" + q["exp"], "k1", q["sig"], now=NOW).reason == signing.MISMATCH


def test_signature_for_another_path_is_refused():
    signer = Signer(OLD)
    q = signer.sign_path(segment_path("f1", 0), NOW + 100)
    for other in ("/audio/f1/1", "/audio/f2/0", "/audio/f1/00", "/audio/f1/0/", "/AUDIO/f1/0"):
        assert signer.verify(other, q["exp"], q["kid"], q["sig"], now=NOW).reason == signing.MISMATCH


@pytest.mark.parametrize(
    ("exp", "kid", "sig", "reason"),
    [
        (None, "k1", "x" * 43, signing.MISSING),
        ("123", None, "x" * 43, signing.MISSING),
        ("123", "k1", None, signing.MISSING),
        ("", "k1", "x" * 43, signing.MISSING),
        ("+123", "k1", "x" * 43, signing.BAD_EXP),
        (" 123", "k1", "x" * 43, signing.BAD_EXP),
        ("1e9", "k1", "x" * 43, signing.BAD_EXP),
        ("1234567890123", "k1", "x" * 43, signing.BAD_EXP),
        ("123", "k1", "x" * 42, signing.BAD_SIG),
        ("123", "k1", "x" * 42 + "=", signing.BAD_SIG),
        ("123", "nope", "x" * 43, signing.UNKNOWN_KID),
    ],
)
def test_malformed_or_unknown_parameters(exp, kid, sig, reason):
    assert Signer(OLD).verify("/audio/f1/0", exp, kid, sig, now=0) == signing.Verdict(False, reason)


def test_rotation_first_key_signs_all_keys_verify():
    old_url = Signer(OLD).sign_segment_url("http://c", "f1", 0, now=NOW, ttl=600)
    rotated = Signer(ROTATED)
    assert rotated.signing_kid == "k2"
    new_url = rotated.sign_segment_url("http://c", "f1", 0, now=NOW, ttl=600)
    assert "kid=k2" in new_url
    verdict = _verify_url(rotated, old_url, NOW + 1)
    assert verdict.ok and verdict.kid == "k1"
    assert _verify_url(rotated, new_url, NOW + 1).ok
    # the old key retired: its URLs stop working, the new ones do not
    retired = Signer({"k2": ROTATED["k2"]})
    assert _verify_url(retired, old_url, NOW + 1).reason == signing.UNKNOWN_KID
    assert _verify_url(retired, new_url, NOW + 1).ok
    # an old-kid URL re-signed with the new secret under the old kid does not verify
    assert _verify_url(Signer({"k1": "other"}), old_url, NOW + 1).reason == signing.MISMATCH


def test_explicit_kid_selection_and_errors():
    signer = Signer(ROTATED)
    assert signer.sign_path("/audio/f/0", NOW, kid="k1")["kid"] == "k1"
    assert signer.kids == ["k2", "k1"]
    with pytest.raises(KeyError):
        signer.sign_path("/audio/f/0", NOW, kid="k9")
    with pytest.raises(ValueError):
        Signer({})
    with pytest.raises(ValueError):
        Signer({"k": ""})
    with pytest.raises(ValueError):
        signer.sign_segment_url("http://c", "f", 0, now=NOW, ttl=0)
    with pytest.raises(ValueError):
        segment_path("f", -1)


_text = st.text(alphabet=st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=20)


@settings(max_examples=150, deadline=None)
@given(
    path=_text,
    exp=st.integers(min_value=1, max_value=10**11),
    other_path=_text,
    other_exp=st.integers(min_value=1, max_value=10**11),
    kid=st.sampled_from(["k1", "k2"]),
)
def test_property_only_the_signed_triple_verifies(path, exp, other_path, other_exp, kid):
    signer = Signer(ROTATED)
    q = signer.sign_path(path, exp, kid=kid)
    assert signer.verify(path, q["exp"], q["kid"], q["sig"], now=exp - 1).ok
    changed = (other_path, str(other_exp)) != (path, q["exp"])
    verdict = signer.verify(other_path, str(other_exp), q["kid"], q["sig"], now=0)
    assert verdict.ok is (not changed)
    other_kid = "k1" if kid == "k2" else "k2"
    assert not signer.verify(path, q["exp"], other_kid, q["sig"], now=0).ok
