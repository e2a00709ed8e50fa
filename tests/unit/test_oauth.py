"""OAuth pieces, pure: PKCE S256, the scope rules, the per-token rate limiter, token key rotation.

Expected values come from outside the code under test: the PKCE pair is RFC 7636's appendix B
example; the scopes are those the Spotify Web API reference lists for each endpoint; the limiter's
numbers follow from the token-bucket definition (burst B, refill r/s) by hand.
"""

from __future__ import annotations

import jwt
import pytest

from playback import auth
from playback.oauth import pkce
from playback.oauth.ratelimit import RateLimiter, retry_after_seconds
from playback.oauth.scopes import ALL_SCOPES, INSUFFICIENT_SCOPE, NEEDS_USER, decide, parse_scope, rule_for

# RFC 7636, Appendix B
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
NOW = 1_767_225_600


# -- PKCE ----------------------------------------------------------------------------------------
def test_pkce_s256_matches_rfc_7636_example():
    assert pkce.s256(RFC_VERIFIER) == RFC_CHALLENGE
    assert pkce.verify(RFC_VERIFIER, RFC_CHALLENGE)
    assert pkce.valid_challenge(RFC_CHALLENGE, "S256")


@pytest.mark.parametrize("verifier", [
    RFC_VERIFIER[:-1] + "l",  # one character off
    "short",  # under 43 characters
    "a" * 129,  # over 128
    RFC_VERIFIER[:-1] + "+",  # outside the unreserved set
    "",
    None,
])
def test_pkce_refuses_wrong_or_malformed_verifiers(verifier):
    assert not pkce.verify(verifier, RFC_CHALLENGE)


def test_pkce_plain_method_refused():
    assert not pkce.verify(RFC_VERIFIER, RFC_VERIFIER, "plain")
    assert not pkce.valid_challenge(RFC_CHALLENGE, "plain")
    assert not pkce.valid_challenge(None, "S256")


# -- scopes --------------------------------------------------------------------------------------
SPOTIFY_SCOPES = [  # (method, path, a scope Spotify's reference lists for it)
    ("GET", "/v1/me/player", "user-read-playback-state"),
    ("GET", "/v1/me/player/devices", "user-read-playback-state"),
    ("GET", "/v1/me/player/currently-playing", "user-read-currently-playing"),
    ("PUT", "/v1/me/player/play", "user-modify-playback-state"),
    ("PUT", "/v1/me/player/pause", "user-modify-playback-state"),
    ("POST", "/v1/me/player/next", "user-modify-playback-state"),
    ("POST", "/v1/me/player/queue", "user-modify-playback-state"),
    ("PUT", "/v1/me/player", "user-modify-playback-state"),
    ("GET", "/v1/me/player/recently-played", "user-read-recently-played"),
    ("GET", "/v1/me/playlists", "playlist-read-private"),
    ("POST", "/v1/users/u1/playlists", "playlist-modify-public"),
    ("POST", "/v1/users/u1/playlists", "playlist-modify-private"),
    ("POST", "/v1/playlists/p1/items", "playlist-modify-private"),
    ("DELETE", "/v1/playlists/p1/tracks", "playlist-modify-public"),
    ("PUT", "/v1/playlists/p1", "playlist-modify-public"),
    ("GET", "/v1/me/tracks", "user-library-read"),
    ("PUT", "/v1/me/tracks", "user-library-modify"),
    ("DELETE", "/v1/me/albums", "user-library-modify"),
    ("GET", "/v1/me/following", "user-follow-read"),
    ("PUT", "/v1/me/following", "user-follow-modify"),
    ("GET", "/v1/me/top/artists", "user-top-read"),
    ("GET", "/v1/me/top/tracks", "user-top-read"),
    ("GET", "/v1/me", "user-read-private"),
    ("GET", "/v1/me", "user-read-email"),
]


@pytest.mark.parametrize(("method", "path", "scope"), SPOTIFY_SCOPES)
def test_spotify_routes_need_their_scope(method, path, scope):
    assert decide(method, path, frozenset({scope}), True).allowed
    others = frozenset(ALL_SCOPES) - set(rule_for(method, path).any_of)
    denied = decide(method, path, others, True)
    assert (denied.status, denied.message) == (403, INSUFFICIENT_SCOPE)


@pytest.mark.parametrize("path", ["/v1/search", "/v1/tracks/abc", "/v1/albums/x/tracks", "/v1/artists/x",
                                  "/v1/artists/x/top-tracks", "/v1/playlists/p1", "/v1/playlists/p1/items",
                                  "/v1/users/u1", "/v1/browse/new-releases", "/v1/tracks"])
def test_catalog_reads_need_no_scope_and_no_user(path):
    assert decide("GET", path, frozenset(), False).allowed


def test_app_tokens_refused_on_user_routes_and_unknown_routes():
    for method, path, _ in SPOTIFY_SCOPES:
        d = decide(method, path, frozenset(ALL_SCOPES), False)
        assert (d.status, d.message) == (401, NEEDS_USER), path
    # a /v1 route no rule knows needs a user (never open to app tokens by accident)
    assert decide("GET", "/v1/some/new/route", frozenset(), False).status == 401
    assert decide("GET", "/v1/some/new/route", frozenset(), True).allowed


def test_rules_do_not_leak_across_segments():
    assert rule_for("GET", "/v1/me/top/artists/extra").source.startswith("*")  # no rule: the default
    assert rule_for("GET", "/v1/tracks/a/b").source.startswith("*")
    assert decide("POST", "/v1/tracks/abc", frozenset(), False).status == 401  # only GET is a catalog read


def test_parse_scope_spaces_and_commas():
    assert parse_scope("a b,c  a") == ("a", "b", "c")
    assert parse_scope(None) == ()


# -- rate limiter --------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_burst_then_refill():
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=5, clock=clock)
    assert [limiter.take("a") for _ in range(5)] == [0.0] * 5  # the burst
    assert limiter.take("a") == pytest.approx(0.5)  # empty: one token back in 1/rate s
    assert limiter.take("b") == 0.0  # another token has its own bucket
    clock.t += 0.25
    assert limiter.take("a") == pytest.approx(0.25)  # half a token back
    clock.t += 0.25
    assert limiter.take("a") == 0.0
    clock.t += 100
    assert [limiter.take("a") for _ in range(6)][-2:] == [0.0, pytest.approx(0.5)]  # capped at burst


def test_steady_rate_is_allowed_forever():
    clock = Clock()
    limiter = RateLimiter(rate=50, burst=50, clock=clock)
    for _ in range(1000):
        clock.t += 1 / 50
        assert limiter.take("t") == 0.0


def test_retry_after_whole_seconds_at_least_one():
    assert retry_after_seconds(0.01) == 1
    assert retry_after_seconds(1.0) == 1
    assert retry_after_seconds(1.2) == 2


def test_forgets_idle_buckets_when_full():
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=1, clock=clock, max_keys=2)
    limiter.take("a")
    limiter.take("b")
    clock.t += 5
    limiter.take("c")
    assert len(limiter._buckets) == 1


# -- token key rotation --------------------------------------------------------------------------
OLD, NEW = ("k1", "old-secret-0123456789"), ("k2", "new-secret-0123456789")


def test_newest_key_signs_and_old_keys_verify_until_removed():
    ring = dict([NEW, OLD])
    token = auth.issue_token("u", ring, now=NOW)
    assert jwt.get_unverified_header(token)["kid"] == "k2"
    assert auth.verify_token(token, ring, now=NOW).user_id == "u"
    old_token = auth.issue_token("u", dict([OLD]), now=NOW)  # signed before the rotation
    assert auth.verify_token(old_token, ring, now=NOW).user_id == "u"
    assert auth.verify_token(old_token, dict([NEW]), now=NOW).reason == auth.INVALID  # k1 removed
    assert auth.verify_token(token, dict([OLD]), now=NOW).reason == auth.INVALID  # k2 unknown there


def test_kid_selects_the_key():
    # a token claiming kid k1 but signed with k2's secret is refused (the kid is not a hint)
    forged = jwt.encode({"sub": "u", "iat": NOW, "exp": NOW + 60, "scope": ""},
                        auth._key(NEW[1]), algorithm="HS256", headers={"kid": "k1"})
    assert auth.verify_token(forged, dict([NEW, OLD]), now=NOW).reason == auth.INVALID


def test_tokens_without_kid_verify_against_the_ring():
    bare = auth.issue_token("u", OLD[1], now=NOW)  # the pre-rotation form: a bare secret, no kid
    assert "kid" not in jwt.get_unverified_header(bare)
    assert auth.verify_token(bare, dict([NEW, OLD]), now=NOW).ok
    assert not auth.verify_token(bare, dict([NEW]), now=NOW).ok


def test_key_ring_of_settings():
    from core.settings import Settings, load

    assert auth.key_ring(Settings(token_secret="s")) == {"t0": "s"}
    assert auth.key_ring(load({"PLAYLOG_TOKEN_KEYS": "k2:b,k1:a"})) == {"k2": "b", "k1": "a"}
    assert list(auth.key_ring(load({"PLAYLOG_TOKEN_KEYS": "k2:b,k1:a"}))) == ["k2", "k1"]


def test_client_credentials_token_has_no_user_and_refresh_tokens_are_not_access_tokens():
    app = auth.issue_token("client-1", OLD[1], now=NOW, scopes=(), grant="client_credentials")
    check = auth.verify_token(app, OLD[1], now=NOW)
    assert check.ok and check.user_id is None and check.client_id == "client-1"
    refresh = auth.issue_token("u", OLD[1], now=NOW, client_id="c", typ="refresh")
    assert auth.verify_token(refresh, OLD[1], now=NOW).reason == auth.INVALID
    assert auth.verify_token(refresh, OLD[1], now=NOW, typ="refresh").user_id == "u"


def test_playlog_token_default_grants_every_scope():
    token = auth.issue_token("u", OLD[1], now=NOW)
    assert auth.verify_token(token, OLD[1], now=NOW).scopes == frozenset(ALL_SCOPES)
