"""OAuth 2.0 as Spotify does it, driven by the stock ``spotipy`` client against a real ``playlog api``.

Scenario: a real broker holds one track and one user (view documents written by the real folds);
two OAuth clients are registered with ``playlog oauth client add`` (a public PKCE app and a
confidential server app); the API runs with a rotated token key ring ``k2`` (signs) + ``k1`` (old,
still verifies), a per-token limit of 2 requests/s in bursts of 10, and CORS for one origin.

We expect: spotipy's ``SpotifyClientCredentials`` gets an app token and reads the track; spotipy's
``SpotifyPKCE`` (the consent form posted by an HTTP client instead of a browser) gets a user token
that reads the player and the track, and refreshes it; an app token on a user route is 401; a scope
the token lacks is 403 ``Insufficient client scope``; a code is single-use; a token signed by the
old key still works and a token of an unknown key does not; 11+ fast requests on one token meet 429
with ``Retry-After`` while another token is still served (a ``playlog token`` is never limited); CORS
preflight answered.
"""

from __future__ import annotations

import base64
import os
import re
import time
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import spotipy
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyPKCE

from devstack.supervisor import Child, free_port
from playback import auth
from tests.support.playback_procs import (
    PLAYLOG,
    RawProducer,
    base_env,
    http,
    json_of,
    run_playlog,
    tail,
    view_docs,
    wait_until,
)

OLD_KEY, NEW_KEY = ("k1", "oauth-test-old-token-key-0123456789"), ("k2", "oauth-test-new-token-key-0123456789")
T0 = 1_767_225_600_000
TRACK, USER = "trkOAuthFact01", "u-oauth"
REDIRECT = "http://127.0.0.1:8888/callback"
ORIGIN = "https://app.example"

EVENTS = [
    {"type": "track.ingested", "event_id": "o1", "occurred_at": T0, "track_id": TRACK, "isrc": "ISRCOAUTH",
     "title": "OAuth Song", "album_id": "al-oauth", "artist_ids": ["ar-oauth"], "duration_ms": 200_000,
     "genres": ["pop"], "explicit": False, "distributor": "d",
     "rightsholders": [{"rightsholder_id": "rh", "share_ppm": 1_000_000}]},
    {"type": "rights.changed", "event_id": "o2", "occurred_at": T0, "track_id": TRACK, "territory": "DE",
     "allowed": True, "valid_from": None, "valid_to": None},
    {"type": "user.registered", "event_id": "o3", "occurred_at": T0, "user_id": USER, "country": "DE",
     "product": "premium", "display_name": "OAuth"},
]


class _Form(HTMLParser):
    """The consent page's form fields (as a browser would submit them)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.action = ""

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action", "")
        if tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value") or ""


def _raw_post(port: int, target: str, payload: bytes, headers: dict[str, str]):
    from http.client import HTTPConnection

    conn = HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("POST", target, body=payload,
                     headers={"Content-Type": "application/x-www-form-urlencoded", **headers})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _consent(port: int, authorize_url: str, user: str, decision: str = "allow") -> dict[str, list[str]]:
    """GET the consent page, post its form as the user; the redirect's query."""
    parts = urlsplit(authorize_url)
    status, _, page = http("GET", port, f"{parts.path}?{parts.query}")
    assert status == 200, page
    form = _Form()
    form.feed(page.decode())
    assert form.action == "/authorize" and "user_id" in form.fields
    fields = dict(form.fields, user_id=user, decision=decision)
    status, headers, body = _raw_post(port, "/authorize", urlencode(fields).encode(), {})
    assert status == 302, (status, body)
    location = headers["location"]
    assert location.startswith(REDIRECT + "?"), location
    return parse_qs(urlsplit(location).query)


@pytest.fixture(scope="module")
def stack(kafka, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("oauth")
    prefix = f"oauth{os.getpid()}."
    port = free_port()
    env = base_env(PLAYLOG_BOOTSTRAP_SERVERS=kafka.bootstrap, PLAYLOG_TOPIC_PREFIX=prefix,
                   PLAYLOG_DATA_DIR=str(tmp / "data"), PLAYLOG_API_PORT=str(port),
                   PLAYLOG_TOKEN_KEYS=f"{NEW_KEY[0]}:{NEW_KEY[1]},{OLD_KEY[0]}:{OLD_KEY[1]}",
                   PLAYLOG_API_RATE_LIMIT="2", PLAYLOG_API_RATE_BURST="10", PLAYLOG_CORS_ORIGINS=ORIGIN,
                   PLAYLOG_LOG_LEVEL="WARNING")
    run_playlog(env, "topics", "create")
    docs = view_docs(EVENTS)
    p = RawProducer(kafka.bootstrap)
    p.send_doc(f"{prefix}view.catalog", f"track:{TRACK}", docs[("catalog", f"track:{TRACK}")])
    p.send_doc(f"{prefix}view.rights", TRACK, docs[("rights", TRACK)])
    p.send_doc(f"{prefix}view.users", USER, docs[("users", USER)])
    p.flush()
    public = run_playlog(env, "oauth", "client", "add", "--name", "Web Player", "--redirect-uri", REDIRECT).stdout
    server = run_playlog(env, "oauth", "client", "add", "--name", "Backend", "--confidential").stdout
    ids = dict(line.split("=", 1) for line in (public + server).split())
    public_id = re.search(r"client_id=(\S+)", public).group(1)
    log = tmp / "api.log"
    api = Child("api", [PLAYLOG, "api"], env, log).start()

    def ready() -> bool:
        assert api.alive(), f"the API exited with {api.returncode}\n{tail(log)}"
        try:
            status, _, body = http("GET", port, "/healthz")
        except OSError:
            return False
        return status == 200 and json_of(body)["ready"] is True

    wait_until("the API to be ready", ready, timeout=120, on_timeout=lambda: tail(log))
    yield {"port": port, "base": f"http://127.0.0.1:{port}", "public_id": public_id,
           "server_id": ids["client_id"], "server_secret": ids["client_secret"], "log": log}
    api.stop()


def _spotify(stack, manager) -> spotipy.Spotify:
    manager.OAUTH_TOKEN_URL = stack["base"] + "/api/token"
    if hasattr(manager, "OAUTH_AUTHORIZE_URL"):
        manager.OAUTH_AUTHORIZE_URL = stack["base"] + "/authorize"
    sp = spotipy.Spotify(auth_manager=manager, retries=0, status_retries=0, requests_timeout=15)
    sp.prefix = stack["base"] + "/v1/"  # the API base (Spotify's is https://api.spotify.com/v1/)
    return sp


def test_client_credentials_with_spotipy(stack) -> None:
    manager = SpotifyClientCredentials(stack["server_id"], stack["server_secret"], cache_handler=MemoryCacheHandler())
    sp = _spotify(stack, manager)
    track = sp.track(TRACK, market="DE")
    assert track["id"] == TRACK and track["name"] == "OAuth Song"
    assert sp.track(TRACK)["id"] == TRACK  # no market and no user: served all the same
    token = manager.get_access_token(as_dict=False)
    assert auth.jwt.get_unverified_header(token)["kid"] == NEW_KEY[0]  # the newest key signs
    with pytest.raises(spotipy.SpotifyException) as caught:  # an app token has no user
        sp.current_playback()
    assert caught.value.http_status == 401
    assert "user authentication" in caught.value.msg
    # a wrong secret: OAuth's own error body
    basic = base64.b64encode(f"{stack['server_id']}:nope".encode()).decode()
    status, headers, body = _raw_post(stack["port"], "/api/token", b"grant_type=client_credentials",
                                      {"Authorization": f"Basic {basic}"})
    assert status == 401 and json_of(body)["error"] == "invalid_client"


def test_pkce_with_spotipy_then_refresh_and_scopes(stack) -> None:
    manager = SpotifyPKCE(client_id=stack["public_id"], redirect_uri=REDIRECT, state="st-1",
                          scope="user-read-playback-state", open_browser=False, cache_handler=MemoryCacheHandler())
    sp = _spotify(stack, manager)
    query = _consent(stack["port"], manager.get_authorize_url(), USER)
    assert query["state"] == ["st-1"]
    code = query["code"][0]
    manager.get_access_token(code, check_cache=False)
    info = manager.cache_handler.get_cached_token()
    assert info["token_type"] == "Bearer" and info["scope"] == "user-read-playback-state"
    assert info["expires_in"] == 3600 and info["refresh_token"]
    assert sp.track(TRACK)["id"] == TRACK  # market from the user's country
    assert sp.current_playback() is None  # GET /v1/me/player: the user has no player yet (204)
    with pytest.raises(spotipy.SpotifyException) as caught:  # GET /v1/me/playlists: playlist-read-private
        sp.current_user_playlists()
    assert caught.value.http_status == 403 and "Insufficient client scope" in caught.value.msg
    status, _, body = http("GET", stack["port"], "/v1/me/playlists", token=info["access_token"])
    assert (status, json_of(body)) == (403, {"error": {"status": 403, "message": "Insufficient client scope"}})
    # the code is single-use
    status, _, body = _raw_post(stack["port"], "/api/token", urlencode({
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": stack["public_id"], "code_verifier": manager.code_verifier}).encode(), {})
    assert status == 400 and json_of(body)["error"] == "invalid_grant"
    # refresh (what spotipy does once the token expired)
    refreshed = manager.refresh_access_token(info["refresh_token"])
    assert refreshed["access_token"] != info["access_token"] or refreshed["refresh_token"]
    assert http("GET", stack["port"], "/v1/me/player", token=refreshed["access_token"])[0] == 204


def test_pkce_wrong_verifier_and_denied_consent(stack) -> None:
    manager = SpotifyPKCE(client_id=stack["public_id"], redirect_uri=REDIRECT, scope="user-top-read",
                          open_browser=False, cache_handler=MemoryCacheHandler())
    code = _consent(stack["port"], manager.get_authorize_url(), USER)["code"][0]
    status, _, body = _raw_post(stack["port"], "/api/token", urlencode({
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": stack["public_id"], "code_verifier": "x" * 43}).encode(), {})
    assert status == 400 and json_of(body)["error"] == "invalid_grant", body
    denied = _consent(stack["port"], manager.get_authorize_url(), USER, decision="deny")
    assert denied["error"] == ["access_denied"] and "code" not in denied


def test_rotated_keys_old_verifies_unknown_does_not(stack) -> None:
    now = time.time()
    old = auth.issue_token(USER, dict([OLD_KEY]), now=now, ttl=600)
    assert http("GET", stack["port"], f"/v1/tracks/{TRACK}", token=old)[0] == 200
    retired = auth.issue_token(USER, {"k0": "a-retired-key-0123456789"}, now=now, ttl=600)
    status, _, body = http("GET", stack["port"], f"/v1/tracks/{TRACK}", token=retired)
    assert status == 401 and json_of(body)["error"]["message"] == auth.INVALID


def test_rate_limit_429_per_token_and_cors(stack) -> None:
    now = time.time()
    # tokens as /api/token issues them (with a client_id: the limit is for OAuth apps' tokens)
    busy = auth.issue_token(USER, dict([NEW_KEY]), now=now, ttl=600, scopes=["streaming"], client_id="app")
    other = auth.issue_token(USER, dict([NEW_KEY]), now=now, ttl=601, client_id="app")
    local = auth.issue_token(USER, dict([NEW_KEY]), now=now, ttl=602)  # a `playlog token`: not limited
    answers = [http("GET", stack["port"], f"/v1/tracks/{TRACK}", token=busy) for _ in range(25)]
    limited = [a for a in answers if a[0] == 429]
    assert limited, [a[0] for a in answers]
    assert all(a[0] in (200, 429) for a in answers)
    status, headers, body = limited[0]
    assert int(headers["retry-after"]) >= 1
    assert json_of(body) == {"error": {"status": 429, "message": "API rate limit exceeded"}}
    assert http("GET", stack["port"], f"/v1/tracks/{TRACK}", token=other)[0] == 200  # per token
    assert {http("GET", stack["port"], f"/v1/tracks/{TRACK}", token=local)[0] for _ in range(25)} == {200}
    status, headers, _ = http("OPTIONS", stack["port"], "/v1/me/player", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert status == 204 and headers["access-control-allow-origin"] == ORIGIN
    assert "PUT" in headers["access-control-allow-methods"]
    assert "authorization" in headers["access-control-allow-headers"].lower()
    status, headers, _ = http("GET", stack["port"], f"/v1/tracks/{TRACK}", token=other, headers={"Origin": ORIGIN})
    assert status == 200 and headers["access-control-allow-origin"] == ORIGIN
    status, headers, _ = http("GET", stack["port"], f"/v1/tracks/{TRACK}", token=other,
                              headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in headers
