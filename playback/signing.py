"""Signed CDN segment URLs (spec/api.md "CDN").

A segment URL is ``{base}/audio/{file_id}/{segment}?exp=UNIX&kid=KEYID[&ter=CC]&sig=SIG`` where

    SIG = base64url_nopad(HMAC-SHA256(keys[kid], canonical_string(path, exp, kid[, ter])))

and the **canonical string** is the UTF-8 encoding of exactly three lines (four with a territory)
joined by ``"\\n"`` (no trailing newline)::

    "{path}\\n{exp}\\n{kid}"            (no territory: the original form, still valid)
    "{path}\\n{exp}\\n{kid}\\n{ter}"     (signed for a territory)

- ``path``: the URL path as the CDN sees it after percent-decoding, starting with ``/audio/``,
  no query string, e.g. ``/audio/f_01HX/7`` (the segment index in plain decimal, no zero padding);
- ``exp``: the expiry as a decimal integer of Unix seconds, exactly the characters of the ``exp``
  query parameter (so ``exp=0100`` and ``exp=100`` are different strings);
- ``kid``: the key id, exactly the ``kid`` query parameter;
- ``ter``: the territory the URL was issued for (the listener's country, ISO 3166-1 alpha-2, two
  capital letters), exactly the ``ter`` query parameter. The CDN refuses a segment of a rendition
  taken down there (playback/cdn.py). Adding, removing or editing ``ter`` breaks the signature.

A newline cannot occur inside any of the parts (a path with one is refused), so the encoding is
unambiguous: no two (path, exp, kid[, ter]) tuples share a canonical string, and a three-line string
never equals a four-line one.

For the manifest builder: ``sign_path(path, exp, territory=country)`` returns ``{"exp", "kid",
"ter", "sig"}``; put every one of them in the query (``sign_segment_url(..., territory=...)`` does).
Without ``territory`` URLs are signed as before (the CDN then applies a takedown anywhere to them).

Several keys are active at once: the first key of the key ring signs, every key verifies. Rotating
is: prepend a new key (it now signs), keep the old one until every URL it signed has expired,
then drop it. A URL is valid while ``now < exp`` (it is expired from second ``exp`` on).

Everything here is pure: the clock is the ``now`` argument (Unix seconds).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

# Unix seconds, at most 12 digits (year 33658): no sign, no spaces, no exponent.
_EXP_RE = re.compile(r"[0-9]{1,12}")
# Unpadded base64url of a 32-byte HMAC-SHA256 digest is 43 characters.
_SIG_RE = re.compile(r"[A-Za-z0-9_-]{43}")
# A territory: ISO 3166-1 alpha-2.
TERRITORY_RE = re.compile(r"[A-Z]{2}")

# Verification reasons (the CDN answers 403 with them).
OK = "ok"
MISSING = "missing exp, kid or sig"
BAD_EXP = "malformed exp"
BAD_SIG = "malformed sig"
EXPIRED = "url expired"
UNKNOWN_KID = "unknown key id"
MISMATCH = "signature does not match"
BAD_TERRITORY = "malformed territory"


def canonical_string(path: str, exp: str, kid: str, territory: str | None = None) -> bytes:
    """The bytes that are MACed: ``f"{path}\\n{exp}\\n{kid}"`` in UTF-8, with ``f"\\n{territory}"``
    appended when the URL carries one (see the module doc)."""
    parts = (path, exp, kid) if territory is None else (path, exp, kid, territory)
    if any("\n" in part for part in parts):
        raise ValueError("path, exp, kid and territory must not contain a newline")
    return "\n".join(parts).encode()


def compute_sig(secret: str | bytes, path: str, exp: str, kid: str, territory: str | None = None) -> str:
    """base64url (no padding) of HMAC-SHA256(secret, canonical_string(path, exp, kid, territory))."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, canonical_string(path, exp, kid, territory), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def segment_path(file_id: str, segment: int) -> str:
    """The canonical (decoded) path of one segment: ``/audio/{file_id}/{segment}``."""
    if segment < 0:
        raise ValueError(f"segment index must be >= 0, got {segment}")
    return f"/audio/{file_id}/{segment}"


@dataclass(frozen=True)
class Verdict:
    """The outcome of verifying a URL: ``ok`` and a short ``reason`` (``"ok"`` when valid)."""

    ok: bool
    reason: str
    kid: str | None = None
    territory: str | None = None  # the signed territory of a valid URL (None: a URL without one)


class Signer:
    """A key ring ``{kid: secret}`` in order; the first key signs, all keys verify."""

    def __init__(self, keys: Mapping[str, str | bytes]):
        if not keys:
            raise ValueError("at least one signing key is needed")
        self._keys: dict[str, bytes] = {}
        for kid, secret in keys.items():
            if not kid or "\n" in kid or not secret:
                raise ValueError("signing keys need a non-empty kid (no newline) and a non-empty secret")
            self._keys[kid] = secret.encode() if isinstance(secret, str) else bytes(secret)
        self.signing_kid: str = next(iter(self._keys))

    @classmethod
    def from_settings(cls, settings) -> Signer:
        """The key ring of ``core.settings.Settings.signing_keys`` (PLAYLOG_SIGNING_KEYS)."""
        return cls(settings.signing_keys)

    @property
    def kids(self) -> list[str]:
        return list(self._keys)

    def sign_path(self, path: str, exp: int, kid: str | None = None, *,
                  territory: str | None = None) -> dict[str, str]:
        """Query parameters ``{"exp", "kid", "sig"}`` for ``path`` valid until ``exp`` (Unix s); with
        ``territory`` (two capital letters) also ``"ter"``, covered by the signature."""
        if exp < 0:
            raise ValueError("exp must be >= 0")
        kid = self.signing_kid if kid is None else kid
        if kid not in self._keys:
            raise KeyError(f"unknown signing key id {kid!r}")
        if territory is not None and not TERRITORY_RE.fullmatch(territory):
            raise ValueError(f"territory must be two capital letters (ISO 3166-1 alpha-2), got {territory!r}")
        exp_s = str(int(exp))
        sig = compute_sig(self._keys[kid], path, exp_s, kid, territory)
        if territory is None:
            return {"exp": exp_s, "kid": kid, "sig": sig}
        return {"exp": exp_s, "kid": kid, "ter": territory, "sig": sig}

    def sign_segment_url(
        self,
        base_url: str,
        file_id: str,
        segment: int,
        *,
        now: float,
        ttl: int = 3600,
        kid: str | None = None,
        territory: str | None = None,
    ) -> str:
        """A full signed URL for one segment, valid for ``ttl`` seconds from ``now`` (for ``territory``
        when given: the CDN then refuses it once the rendition is taken down there).

        ``exp`` is ``floor(now) + ttl``. ``file_id`` is percent-encoded in the URL; the signature
        covers the decoded path, which is what the CDN verifies.
        """
        if ttl <= 0:
            raise ValueError("ttl must be > 0 seconds")
        path = segment_path(file_id, segment)
        params = self.sign_path(path, int(now) + ttl, kid, territory=territory)
        url_path = f"/audio/{quote(file_id, safe='')}/{segment}"
        return f"{base_url.rstrip('/')}{url_path}?{urlencode(params)}"

    def verify(self, path: str, exp: str | None, kid: str | None, sig: str | None, *, now: float,
               territory: str | None = None) -> Verdict:
        """Check a request's ``path`` and raw ``exp``/``kid``/``sig`` (and ``ter``, None when absent)
        query values at time ``now``.

        Order: presence and syntax, then key id, then the MAC (constant-time compare), then expiry,
        so a forged URL never learns whether its ``exp`` would have been accepted.
        """
        if not exp or not kid or not sig:
            return Verdict(False, MISSING)
        if not _EXP_RE.fullmatch(exp):
            return Verdict(False, BAD_EXP)
        if not _SIG_RE.fullmatch(sig):
            return Verdict(False, BAD_SIG)
        if territory is not None and not TERRITORY_RE.fullmatch(territory):
            return Verdict(False, BAD_TERRITORY)
        key = self._keys.get(kid)
        if key is None:
            return Verdict(False, UNKNOWN_KID)
        if "\n" in path:
            return Verdict(False, MISMATCH, kid)
        expected = compute_sig(key, path, exp, kid, territory)
        if not hmac.compare_digest(expected.encode("ascii"), sig.encode("ascii")):
            return Verdict(False, MISMATCH, kid)
        if now >= int(exp):
            return Verdict(False, EXPIRED, kid)
        return Verdict(True, OK, kid, territory)
