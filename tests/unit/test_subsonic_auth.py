"""Subsonic authentication: token + salt, ``p`` (clear and ``enc:``), ``apiKey``, and the app passwords
behind them (encrypted in the log, decrypted by the API, revocable).

Independent expected values: the Subsonic API documentation's token example (password ``sesame``,
salt ``c19b2d`` -> ``26719a1196d2a940705a59634eb18eab``) and its ``enc:`` example (``enc:736573616d65``),
and RFC 5869's HKDF computed here with ``hmac`` for the key derivation.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from playback.replica_state import ReplicaState
from playback.subsonic.auth import Authenticator, attempt_of, decode_password, token_matches, token_of
from playback.subsonic.params import Params
from playback.subsonic.render import Code, SubsonicError
from playback.subsonic.secrets import PasswordBox, derive_key, new_password
from processors import views

MASTER = "unit-test-pii-master-key"


def test_the_documented_token_example() -> None:
    assert token_of("sesame", "c19b2d") == "26719a1196d2a940705a59634eb18eab"
    assert token_matches("sesame", "c19b2d", "26719A1196D2A940705A59634EB18EAB")
    assert not token_matches("sesame", "c19b2e", "26719a1196d2a940705a59634eb18eab")


def test_enc_passwords() -> None:
    assert decode_password("enc:736573616d65") == "sesame"
    assert decode_password("sesame") == "sesame"
    assert decode_password("enc:zz") == "enc:zz"  # not hex: taken as is (and fails to match)


def test_key_is_rfc5869_hkdf_sha256() -> None:
    prk = hmac.new(b"playlog", MASTER.encode(), hashlib.sha256).digest()
    okm = hmac.new(prk, b"subsonic app password v1" + b"\x01", hashlib.sha256).digest()
    assert derive_key(MASTER) == okm
    with pytest.raises(ValueError):
        derive_key("")


def test_sealed_passwords_open_only_for_their_user_id_and_key() -> None:
    box = PasswordBox(MASTER)
    password = new_password()
    assert len(password) == 24
    sealed = box.seal("u1", "p1", password)
    assert sealed.startswith("v1.") and password not in sealed
    assert box.open("u1", "p1", sealed) == password
    assert box.seal("u1", "p1", password) != sealed  # a fresh nonce each time
    assert box.open("u2", "p1", sealed) is None and box.open("u1", "p2", sealed) is None
    assert PasswordBox("another-key").open("u1", "p1", sealed) is None
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    assert box.open("u1", "p1", tampered) is None
    assert box.open("u1", "p1", "v2.abc") is None and box.open("u1", "p1", "v1.!!") is None


def p(**kw: str) -> Params:
    return Params(list(kw.items()))


@pytest.mark.parametrize(("params", "code"), [
    (p(apiKey="k", u="me"), Code.CONFLICTING_AUTH),
    (p(apiKey="k", t="t", s="s"), Code.CONFLICTING_AUTH),
    (p(u="me", p="x", t="t", s="s"), Code.CONFLICTING_AUTH),
    (p(), Code.MISSING_PARAMETER),
    (p(u="me"), Code.MISSING_PARAMETER),
    (p(u="me", t="abc"), Code.MISSING_PARAMETER),
    (p(u="me", s="abc"), Code.MISSING_PARAMETER),
    (p(p="x"), Code.MISSING_PARAMETER),
    (p(apiKey=" "), Code.INVALID_API_KEY),
])
def test_malformed_attempts(params: Params, code: Code) -> None:
    with pytest.raises(SubsonicError) as err:
        attempt_of(params)
    assert err.value.code == code


class Creds:
    """A replica fed with credentials documents from the real fold."""

    def __init__(self) -> None:
        self.replica = ReplicaState(search=False)
        self.store: dict = {}
        self.box = PasswordBox(MASTER)
        self.n = 0
        self.auth = Authenticator(self.replica, MASTER)

    def feed(self, etype: str, **fields: object) -> None:
        self.n += 1
        spec = next(s for s in views.VIEWS if s.name == "credentials")
        event = {"type": etype, "event_id": f"c{self.n}", "occurred_at": 1_000 * self.n, **fields}
        published, dead = views.apply_batch(spec, self.store, [(None, event)])
        assert not dead
        for key, (_, doc) in published.items():
            self.replica.apply("credentials", key, doc)

    def issue(self, user: str, pid: str, password: str, box: PasswordBox | None = None) -> None:
        self.feed("app_password.issued", user_id=user, password_id=pid,
                  ciphertext=(box or self.box).seal(user, pid, password))

    def who(self, **kw: str) -> str | Code:
        try:
            return self.auth.authenticate(p(**kw))
        except SubsonicError as exc:
            return exc.code


def test_token_password_and_api_key_against_app_passwords() -> None:
    c = Creds()
    c.issue("u1", "p1", "sesame")
    assert c.who(u="u1", t="26719a1196d2a940705a59634eb18eab", s="c19b2d") == "u1"
    assert c.who(u="u1", p="sesame") == "u1" and c.who(u="u1", p="enc:736573616d65") == "u1"
    assert c.who(apiKey="sesame") == "u1"
    assert c.who(u="u1", p="wrong") == Code.WRONG_CREDENTIALS
    assert c.who(u="u2", p="sesame") == Code.WRONG_CREDENTIALS  # the answer does not tell which
    assert c.who(u="u1", t=token_of("sesame", "s1"), s="s2") == Code.WRONG_CREDENTIALS
    assert c.who(apiKey="nope") == Code.INVALID_API_KEY


def test_new_passwords_work_at_once_and_revocation_takes_effect() -> None:
    c = Creds()
    c.issue("u1", "p1", "first-password")
    assert c.who(apiKey="first-password") == "u1"  # the key index is built
    c.issue("u1", "p2", "second-password")
    assert c.who(apiKey="second-password") == "u1" and c.who(u="u1", p="second-password") == "u1"
    c.feed("app_password.revoked", user_id="u1", password_id="p1")
    assert c.who(apiKey="first-password") == Code.INVALID_API_KEY  # though the index still had it
    assert c.who(u="u1", p="first-password") == Code.WRONG_CREDENTIALS
    assert c.who(u="u1", p="second-password") == "u1"
    c.feed("app_password.revoked", user_id="u1", password_id=None)  # every password issued so far
    assert c.who(u="u1", p="second-password") == Code.WRONG_CREDENTIALS
    c.issue("u1", "p3", "third-password")  # issued after the revoke-all: works
    assert c.who(u="u1", p="third-password") == "u1" and c.who(apiKey="third-password") == "u1"
    c.feed("user.erasure_requested", user_id="u1")
    assert c.who(u="u1", p="third-password") == Code.WRONG_CREDENTIALS


def test_a_ciphertext_of_another_key_or_user_never_authenticates() -> None:
    c = Creds()
    c.issue("u1", "p1", "other-key-password", box=PasswordBox("another-master-key"))
    assert c.who(u="u1", p="other-key-password") == Code.WRONG_CREDENTIALS
    assert c.who(apiKey="other-key-password") == Code.INVALID_API_KEY
    sealed_for_u2 = c.box.seal("u2", "p9", "moved-password")
    c.feed("app_password.issued", user_id="u1", password_id="p9", ciphertext=sealed_for_u2)
    assert c.who(u="u1", p="moved-password") == Code.WRONG_CREDENTIALS
