"""The OpenAPI 3 description of ``/authorize`` and ``/api/token`` (playback/oauth/server.py), for
playback/openapi.py to merge into ``/openapi.json`` (its owner decides: ``paths |= PATHS`` and
``components["schemas"] |= SCHEMAS``). Not merged yet."""

from __future__ import annotations

from typing import Any

_FORM = "application/x-www-form-urlencoded"

SCHEMAS: dict[str, Any] = {
    "OAuthToken": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "scope"],
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": {"type": "integer", "minimum": 1},
            "refresh_token": {"type": "string", "description": "absent for client_credentials"},
            "scope": {"type": "string", "description": "space-separated scopes granted"},
        },
    },
    "OAuthError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "enum": ["invalid_request", "invalid_client", "invalid_grant",
                                                 "unsupported_grant_type", "invalid_scope"]},
            "error_description": {"type": "string"},
        },
    },
}

_AUTHORIZE_PARAMS = [
    {"name": n, "in": "query", "required": r, "schema": {"type": "string"}}
    for n, r in (("client_id", True), ("response_type", True), ("redirect_uri", True), ("state", False),
                 ("scope", False), ("code_challenge_method", False), ("code_challenge", False),
                 ("user_id", False))
]

PATHS: dict[str, Any] = {
    "/authorize": {
        "get": {
            "summary": "Consent page of the authorization code flow (PKCE S256)",
            "security": [],
            "parameters": _AUTHORIZE_PARAMS,
            "responses": {"200": {"description": "HTML consent page", "content": {"text/html": {}}},
                          "302": {"description": "redirect_uri with error= (bad request from a known client)"},
                          "400": {"description": "unknown client or redirect URI"}},
        },
        "post": {
            "summary": "The consent form: redirects to redirect_uri with code= or error=access_denied",
            "security": [],
            "requestBody": {"content": {_FORM: {"schema": {"type": "object"}}}},
            "responses": {"302": {"description": "redirect_uri?code=&state="},
                          "400": {"description": "bad request"},
                          "403": {"description": "consent posted from beyond loopback"}},
        },
    },
    "/api/token": {
        "post": {
            "summary": "Tokens: authorization_code (+code_verifier), refresh_token, client_credentials",
            "security": [],
            "requestBody": {"required": True, "content": {_FORM: {"schema": {
                "type": "object", "required": ["grant_type"],
                "properties": {k: {"type": "string"} for k in (
                    "grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "client_id",
                    "client_secret", "scope")}}}}},
            "responses": {
                "200": {"description": "tokens",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthToken"}}}},
                "400": {"description": "OAuth error",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}}},
                "401": {"description": "invalid_client",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}}},
            },
        },
    },
}
