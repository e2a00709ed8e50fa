"""``/authorize`` and ``/api/token`` in process (aiohttp's test server): the error answers of RFC 6749
section 5.2 and the checks of section 4.1 (redirect URI, single-use and expiring codes), with a
hand-set clock. The spotipy end-to-end run is tests/integration/test_oauth_http.py."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from core.settings import Settings
from playback import auth
from playback.oauth import server as oauth
from playback.oauth.clients import ClientStore

# RFC 7636, Appendix B
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
REDIRECT = "http://127.0.0.1:9/cb"
RING = {"k2": "new-key-0123456789", "k1": "old-key-0123456789"}


class Clock:
    t = 1_767_225_600.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def world(tmp_path: Path):
    """Run ``scenario(client, clock, secret)`` against a fresh server (two clients registered)."""
    settings = Settings(data_dir=tmp_path, token_keys=RING)
    store = ClientStore(settings.oauth_clients_path)
    store.add("app", [REDIRECT], confidential=False, client_id="pub")
    _, secret = store.add("srv", [REDIRECT], confidential=True, client_id="conf")

    def run(scenario) -> None:
        async def main() -> None:
            clock = Clock()
            app = web.Application()
            app.router.add_routes(oauth.OAuthServer(settings, clock).routes())
            client = TestClient(TestServer(app))
            await client.start_server()
            try:
                await scenario(client, clock, secret)
            finally:
                await client.close()

        asyncio.run(main())

    return run


async def _code(client, scope="user-read-private", client_id="pub", challenge=CHALLENGE, user="u1") -> str:
    fields = {"client_id": client_id, "redirect_uri": REDIRECT, "response_type": "code", "scope": scope,
              "state": "s", "user_id": user, "decision": "allow"}
    if challenge:
        fields |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    resp = await client.post("/authorize", data=fields, allow_redirects=False)
    assert resp.status == 302, await resp.text()
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert query["state"] == ["s"]
    return query["code"][0]


async def _token(client, **fields):
    headers = fields.pop("headers", {})
    resp = await client.post("/api/token", data=fields, headers=headers)
    return resp.status, await resp.json()


def test_code_with_pkce_then_refresh(world):
    world(_code_with_pkce_then_refresh)


async def _code_with_pkce_then_refresh(client, clock, secret):
    code = await _code(client, scope="user-read-private user-top-read")
    status, body = await _token(client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT,
                                client_id="pub", code_verifier=VERIFIER)
    assert status == 200, body
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "user-read-private user-top-read"
    check = auth.verify_token(body["access_token"], RING, now=clock())
    assert check.user_id == "u1" and check.client_id == "pub"
    assert check.scopes == {"user-read-private", "user-top-read"}
    status, again = await _token(client, grant_type="refresh_token", refresh_token=body["refresh_token"],
                                 client_id="pub", scope="user-top-read")
    assert status == 200 and again["scope"] == "user-top-read"
    status, err = await _token(client, grant_type="refresh_token", refresh_token=body["refresh_token"],
                               client_id="pub", scope="playlist-modify-public")
    assert (status, err["error"]) == (400, "invalid_scope")
    status, err = await _token(client, grant_type="refresh_token", refresh_token=body["access_token"],
                               client_id="pub")
    assert (status, err["error"]) == (400, "invalid_grant")  # an access token is not a refresh token


def test_code_is_single_use_short_lived_and_bound(world):
    world(_code_is_single_use_short_lived_and_bound)


async def _code_is_single_use_short_lived_and_bound(client, clock, secret):
    args = {"grant_type": "authorization_code", "redirect_uri": REDIRECT, "client_id": "pub",
            "code_verifier": VERIFIER}
    code = await _code(client)
    assert (await _token(client, code=code, **args))[0] == 200
    status, err = await _token(client, code=code, **args)
    assert (status, err["error"]) == (400, "invalid_grant")
    code = await _code(client)
    clock.t += oauth.CODE_TTL
    status, err = await _token(client, code=code, **args)
    assert (status, err["error"]) == (400, "invalid_grant")
    code = await _code(client)
    status, err = await _token(client, code=code, **(args | {"redirect_uri": "http://127.0.0.1:9/other"}))
    assert (status, err["error"], err["error_description"]) == (400, "invalid_grant", "Invalid redirect URI")
    code = await _code(client)
    status, err = await _token(client, code=code, **(args | {"code_verifier": VERIFIER[::-1]}))
    assert (status, err["error"]) == (400, "invalid_grant")


def test_client_credentials_basic_or_form(world):
    world(_client_credentials_basic_or_form)


async def _client_credentials_basic_or_form(client, clock, secret):
    basic = base64.b64encode(f"conf:{secret}".encode()).decode()
    status, body = await _token(client, grant_type="client_credentials", headers={"Authorization": f"Basic {basic}"})
    assert status == 200 and "refresh_token" not in body
    check = auth.verify_token(body["access_token"], RING, now=clock())
    assert check.ok and check.user_id is None and check.client_id == "conf"
    status, body = await _token(client, grant_type="client_credentials", client_id="conf", client_secret=secret)
    assert status == 200
    status, err = await _token(client, grant_type="client_credentials", client_id="conf", client_secret="bad")
    assert (status, err["error"]) == (401, "invalid_client")
    status, err = await _token(client, grant_type="client_credentials", client_id="pub")  # a public client
    assert (status, err["error"]) == (401, "invalid_client")


def test_confidential_code_flow_without_pkce_needs_the_secret(world):
    world(_confidential_code_flow_without_pkce_needs_the_secret)


async def _confidential_code_flow_without_pkce_needs_the_secret(client, clock, secret):
    code = await _code(client, client_id="conf", challenge=None)
    status, err = await _token(client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT,
                               client_id="conf")
    assert (status, err["error"]) == (401, "invalid_client")
    code = await _code(client, client_id="conf", challenge=None)
    status, body = await _token(client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT,
                                client_id="conf", client_secret=secret)
    assert status == 200, body


def test_token_endpoint_errors(world):
    world(_token_endpoint_errors)


async def _token_endpoint_errors(client, clock, secret):
    status, err = await _token(client, grant_type="password", client_id="pub")
    assert (status, err["error"]) == (400, "unsupported_grant_type")
    status, err = await _token(client, client_id="pub")
    assert (status, err["error"]) == (400, "invalid_request")
    resp = await client.post("/api/token", json={"grant_type": "client_credentials"})
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_request"


def test_authorize_refuses_unknown_clients_and_redirects_and_requires_pkce_for_public(world):
    world(_authorize_refuses_unknown_clients_and_redirects_and_requires_pkce_for_public)


async def _authorize_refuses_unknown_clients_and_redirects_and_requires_pkce_for_public(client, clock, secret):
    base = {"client_id": "pub", "redirect_uri": REDIRECT, "response_type": "code"}
    resp = await client.get("/authorize", params=base | {"client_id": "nope"}, allow_redirects=False)
    assert resp.status == 400
    resp = await client.get("/authorize", params=base | {"redirect_uri": "http://evil/cb"}, allow_redirects=False)
    assert resp.status == 400  # never redirected to an unregistered URI
    resp = await client.get("/authorize", params=base, allow_redirects=False)  # no code_challenge
    assert resp.status == 302 and "error=invalid_request" in resp.headers["Location"]
    resp = await client.get("/authorize", params=base | {"code_challenge": CHALLENGE, "code_challenge_method": "S256",
                                                         "scope": "not-a-scope"}, allow_redirects=False)
    assert resp.status == 302 and "error=invalid_scope" in resp.headers["Location"]
    resp = await client.get("/authorize", params=base | {"code_challenge": CHALLENGE, "code_challenge_method": "S256",
                                                         "user_id": "u<1>"}, allow_redirects=False)
    page = await resp.text()
    assert resp.status == 200 and 'value="u&lt;1&gt;"' in page and "<form" in page
