"""``/authorize`` and ``/api/token``: the Spotify accounts service's OAuth 2.0 endpoints, on the API.

Flows (as https://developer.spotify.com/documentation/web-api/concepts/authorization):

- **authorization code with PKCE** (public or confidential clients): ``GET /authorize?client_id=&
  response_type=code&redirect_uri=&code_challenge_method=S256&code_challenge=&scope=&state=`` shows a
  consent page; its form posts to ``POST /authorize``, which redirects to ``redirect_uri?code=&state=``
  (or ``?error=access_denied&state=``). ``POST /api/token`` with ``grant_type=authorization_code``,
  ``code``, ``redirect_uri``, ``client_id`` and ``code_verifier`` answers the tokens. A confidential
  client may leave PKCE out and authenticate with its secret instead (the plain code flow).
- **refresh_token**: ``grant_type=refresh_token&refresh_token=`` (+ the client): a new access token
  and a new refresh token. Refresh tokens are JWTs (``typ: "refresh"``, 30 days) signed with the token
  key ring: they survive an API restart; rotating the ring out revokes them.
- **client_credentials** (confidential clients): an app token with no user and no scope (Spotify
  ignores scopes there): catalog routes only.

Client authentication: HTTP Basic (``client_id:client_secret``) or ``client_id`` / ``client_secret``
form fields. Token answers are ``{"access_token", "token_type": "Bearer", "expires_in",
"refresh_token", "scope"}`` (no refresh token for client credentials); errors are
``{"error": "invalid_grant", "error_description": "..."}`` (400; 401 ``invalid_client``).

Identity (a loopback development setup, there is no account system): the consent page asks for the
user id in a ``user_id`` field, prefilled from a ``user_id`` query parameter of ``/authorize``. The
consent is only accepted from a loopback peer (anyone who can post the form can act as any user).

Authorization codes live in this API process's memory: single use, valid :data:`CODE_TTL` seconds, lost
on restart (the client starts the flow again). With several API processes behind one address the
code must come back to the process that issued it.
"""

from __future__ import annotations

import base64
import html
import ipaddress
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from aiohttp import web

from playback import auth
from playback.oauth import pkce
from playback.oauth.clients import Client, ClientStore
from playback.oauth.scopes import ALL_SCOPES, parse_scope

CODE_TTL = 120
ACCESS_TTL = 3600
REFRESH_TTL = 30 * 24 * 3600
MAX_CODES = 10_000
PATHS = frozenset({"/authorize", "/api/token"})


@dataclass(frozen=True)
class _Code:
    client_id: str
    redirect_uri: str
    user_id: str
    scopes: tuple[str, ...]
    challenge: str | None
    expires_at: float


class _Answer(Exception):
    """A response answered at once (a redirect or a plain-text error page of ``/authorize``)."""

    def __init__(self, response: web.Response):
        super().__init__(response.status)
        self.response = response


def _redirect(location: str) -> _Answer:
    resp = web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})
    return _Answer(resp)


def _page_error(status: int, text: str) -> _Answer:
    return _Answer(web.Response(status=status, text=text, content_type="text/plain"))


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def oauth_error(error: str, description: str, status: int = 400, *, basic: bool = False) -> web.Response:
    resp = web.Response(body=orjson.dumps({"error": error, "error_description": description}), status=status,
                        content_type="application/json")
    resp.headers["Cache-Control"] = "no-store"
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Basic realm="playlog"' if basic else 'Bearer realm="playlog"'
    return resp


def _with_query(uri: str, params: dict[str, str]) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address((request.remote or "").split("%")[0]).is_loopback
    except ValueError:
        return False


class OAuthServer:
    def __init__(self, settings: Any, clock: Callable[[], float] = time.time):
        self.settings, self.clock = settings, clock
        self.ring = auth.key_ring(settings)
        self.clients = ClientStore(settings.oauth_clients_path)
        self._codes: dict[str, _Code] = {}

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/authorize", self.authorize_page, allow_head=False),
                web.post("/authorize", self.authorize_decision),
                web.post("/api/token", self.token)]

    # -- /authorize --------------------------------------------------------------------------------
    def _request_of(self, params: Any) -> tuple[Client, str, dict[str, str]]:
        """Validate an authorization request; an unknown client or redirect URI -> 400 page (never a
        redirect to an unregistered URI); other errors -> redirect with ``error``."""
        client = self.clients.get(params.get("client_id"))
        if client is None:
            raise _page_error(400, "INVALID_CLIENT: Invalid client")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            raise _page_error(400, "INVALID_CLIENT: Invalid redirect URI")
        state = params.get("state")
        back = {"state": state} if state is not None else {}

        def fail(error: str, description: str) -> _Answer:
            return _redirect(_with_query(redirect_uri, {"error": error, "error_description": description, **back}))

        if params.get("response_type") != "code":
            raise fail("unsupported_response_type", "response_type must be code")
        challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
        if challenge is not None or method is not None or not client.confidential:
            if not pkce.valid_challenge(challenge, method):
                raise fail("invalid_request", "code_challenge (S256) is required")
        scopes = parse_scope(params.get("scope"))
        unknown = [s for s in scopes if s not in ALL_SCOPES]
        if unknown:
            raise fail("invalid_scope", f"unknown scope {unknown[0]}")
        fields = {"client_id": client.client_id, "redirect_uri": redirect_uri, "response_type": "code",
                  "scope": " ".join(scopes), **back}
        if challenge is not None:
            fields |= {"code_challenge": challenge, "code_challenge_method": method or ""}
        return client, redirect_uri, fields

    async def authorize_page(self, request: web.Request) -> web.Response:
        try:
            client, _, fields = self._request_of(request.query)
        except _Answer as answer:
            return answer.response
        hidden = "\n".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                           for k, v in fields.items())
        scopes = "".join(f"<li>{html.escape(s)}</li>" for s in fields["scope"].split()) or "<li>(none)</li>"
        user = html.escape(request.query.get("user_id", ""))
        page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Authorize {html.escape(client.name or client.client_id)}</title></head>
<body><h1>{html.escape(client.name or client.client_id)} asks to access your playlog account</h1>
<p>Scopes:</p><ul>{scopes}</ul>
<form method="post" action="/authorize">
{hidden}
<label>User id <input name="user_id" value="{user}" required></label>
<button name="decision" value="allow">Agree</button>
<button name="decision" value="deny">Cancel</button>
</form></body></html>"""
        resp = web.Response(text=page, content_type="text/html")
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Frame-Options"] = "DENY"
        return resp

    async def authorize_decision(self, request: web.Request) -> web.Response:
        try:
            return self._decide(request, await request.post())
        except _Answer as answer:
            return answer.response

    def _decide(self, request: web.Request, form: Any) -> web.Response:
        client, redirect_uri, fields = self._request_of(form)
        back = {"state": fields["state"]} if "state" in fields else {}
        if form.get("decision") != "allow":
            raise _redirect(_with_query(redirect_uri, {"error": "access_denied", **back}))
        if not _loopback(request):
            raise _page_error(403, "consent is only accepted from loopback (a development identity)")
        user_id = str(form.get("user_id", "")).strip()
        if not user_id or len(user_id) > 128:
            raise _page_error(400, "a user_id is required")
        code = secrets.token_urlsafe(32)
        now = self.clock()
        if len(self._codes) >= MAX_CODES:
            self._codes = {k: c for k, c in self._codes.items() if c.expires_at > now}
            if len(self._codes) >= MAX_CODES:
                raise _page_error(503, "too many pending authorizations, retry shortly")
        self._codes[code] = _Code(client.client_id, redirect_uri, user_id, tuple(fields["scope"].split()),
                                  fields.get("code_challenge"), now + CODE_TTL)
        raise _redirect(_with_query(redirect_uri, {"code": code, **back}))

    # -- /api/token --------------------------------------------------------------------------------
    def _client_auth(self, request: web.Request, form: Any) -> tuple[str | None, str | None, bool]:
        """(client_id, client_secret, by Basic) from the Authorization header or the form."""
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                cid, sep, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise OAuthError("invalid_client", "Invalid client", 401) from None
            if not sep:
                raise OAuthError("invalid_client", "Invalid client", 401)
            return cid, secret, True
        return form.get("client_id"), form.get("client_secret"), False

    def _authenticate(self, client_id: str | None, secret: str | None, *, secret_needed: bool) -> Client:
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthError("invalid_client", "Invalid client", 401)
        if secret or secret_needed:
            if not client.secret_matches(secret):
                raise OAuthError("invalid_client", "Invalid client secret", 401)
        return client

    async def token(self, request: web.Request) -> web.Response:
        basic = False
        try:
            if request.content_type != "application/x-www-form-urlencoded":
                raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
            form = await request.post()
            client_id, secret, basic = self._client_auth(request, form)
            grant = form.get("grant_type")
            if grant == "authorization_code":
                return self._tokens(*self._code_grant(form, client_id, secret))
            if grant == "refresh_token":
                return self._tokens(*self._refresh_grant(form, client_id, secret))
            if grant == "client_credentials":
                client = self._authenticate(client_id, secret, secret_needed=True)
                return self._tokens(client, None, ())
            if not grant:
                raise OAuthError("invalid_request", "grant_type is required")
            raise OAuthError("unsupported_grant_type", f"grant_type {str(grant)[:40]} is not supported")
        except OAuthError as exc:
            return oauth_error(exc.error, exc.description, exc.status, basic=basic)

    def _code_grant(self, form: Any, client_id: str | None, secret: str | None
                    ) -> tuple[Client, str, tuple[str, ...]]:
        raw = form.get("code")
        if not raw:
            raise OAuthError("invalid_request", "code is required")
        code = self._codes.pop(raw, None)  # single use: gone whatever follows
        client = self._authenticate(client_id or (code.client_id if code else None), secret,
                                    secret_needed=code is not None and code.challenge is None)
        if code is None or code.expires_at <= self.clock():
            raise OAuthError("invalid_grant", "Invalid authorization code")
        if code.client_id != client.client_id:
            raise OAuthError("invalid_grant", "Invalid authorization code")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("invalid_grant", "Invalid redirect URI")
        if code.challenge is not None and not pkce.verify(form.get("code_verifier"), code.challenge):
            raise OAuthError("invalid_grant", "code_verifier was incorrect")
        return client, code.user_id, code.scopes

    def _refresh_grant(self, form: Any, client_id: str | None, secret: str | None
                       ) -> tuple[Client, str, tuple[str, ...]]:
        check = auth.verify_token(form.get("refresh_token"), self.ring, now=self.clock(), typ="refresh")
        if not check.ok or check.user_id is None:
            raise OAuthError("invalid_grant", "Invalid refresh token")
        client = self._authenticate(client_id or check.client_id, secret, secret_needed=False)
        if client.client_id != check.client_id:
            raise OAuthError("invalid_grant", "Invalid refresh token")
        scopes = tuple(s for s in ALL_SCOPES if s in check.scopes)
        asked = parse_scope(form.get("scope"))
        if asked:
            if not set(asked) <= set(scopes):
                raise OAuthError("invalid_scope", "the scope asked for exceeds the one granted")
            scopes = asked
        return client, check.user_id, scopes

    def _tokens(self, client: Client, user_id: str | None, scopes: tuple[str, ...]) -> web.Response:
        now = self.clock()
        body: dict[str, Any] = {"token_type": "Bearer", "expires_in": ACCESS_TTL, "scope": " ".join(scopes)}
        if user_id is None:
            body["access_token"] = auth.issue_token(client.client_id, self.ring, now=now, ttl=ACCESS_TTL, scopes=(),
                                                    grant="client_credentials")
        else:
            body["access_token"] = auth.issue_token(user_id, self.ring, now=now, ttl=ACCESS_TTL, scopes=scopes,
                                                    client_id=client.client_id)
            body["refresh_token"] = auth.issue_token(user_id, self.ring, now=now, ttl=REFRESH_TTL, scopes=scopes,
                                                     client_id=client.client_id, typ="refresh")
        resp = web.Response(body=orjson.dumps(body), content_type="application/json")
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["Pragma"] = "no-cache"
        return resp
