"""Registered OAuth clients, kept in a JSON file (PLAYLOG_OAUTH_CLIENTS, default
``<PLAYLOG_DATA_DIR>/oauth/clients.json``) written by ``playlog oauth client add``.

A client has an id, a name, its exact redirect URIs and, when confidential, a secret. Only the
secret's SHA-256 is stored (the secret is printed once, at registration). A public client (no
secret: a browser or mobile app) may use the authorization code flow with PKCE and refresh tokens;
client credentials need a confidential client. The file is read at each token request, so a client
added while the API runs is known at once. Writes go through a temporary file and a rename.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    redirect_uris: tuple[str, ...]
    secret_sha256: str | None = None  # None: a public client

    @property
    def confidential(self) -> bool:
        return self.secret_sha256 is not None

    def secret_matches(self, secret: str | None) -> bool:
        if self.secret_sha256 is None or not secret:
            return False
        return hmac.compare_digest(_sha256(secret), self.secret_sha256)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_redirect(uri: str) -> None:
    parts = urlsplit(uri)
    if not parts.scheme or (parts.scheme in ("http", "https") and not parts.netloc) or parts.fragment:
        raise ValueError(f"bad redirect URI {uri!r}: an absolute URI without a fragment")


class ClientStore:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"clients": {}}
        if not isinstance(data, dict) or not isinstance(data.get("clients"), dict):
            raise ValueError(f"{self.path} is not an OAuth client file")
        return data

    def all(self) -> list[Client]:
        return [self._client(cid, doc) for cid, doc in sorted(self._read()["clients"].items())]

    def get(self, client_id: str | None) -> Client | None:
        if not client_id:
            return None
        doc = self._read()["clients"].get(client_id)
        return None if doc is None else self._client(client_id, doc)

    @staticmethod
    def _client(client_id: str, doc: dict) -> Client:
        return Client(client_id, doc.get("name", ""), tuple(doc.get("redirect_uris", ())), doc.get("secret_sha256"))

    def add(self, name: str, redirect_uris: list[str], *, confidential: bool,
            client_id: str | None = None) -> tuple[Client, str | None]:
        """Register a client; returns it and its secret (None for a public client), shown only now."""
        for uri in redirect_uris:
            _check_redirect(uri)
        data = self._read()
        client_id = client_id or secrets.token_hex(16)
        if client_id in data["clients"]:
            raise ValueError(f"client {client_id} already exists")
        secret = secrets.token_hex(16) if confidential else None
        doc: dict = {"name": name, "redirect_uris": list(redirect_uris)}
        if secret is not None:
            doc["secret_sha256"] = _sha256(secret)
        data["clients"][client_id] = doc
        self._write(data)
        return self._client(client_id, doc), secret

    def remove(self, client_id: str) -> bool:
        data = self._read()
        if data["clients"].pop(client_id, None) is None:
            return False
        self._write(data)
        return True

    def _write(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.path)
