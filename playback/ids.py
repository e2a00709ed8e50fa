"""Public (Spotify-compatible) ids for catalog and playlist ids.

Spotify clients (spotipy among them) check an id against ``^[0-9A-Za-z]+$`` before any request, so
an internal id such as ``trk-0-0000000`` cannot be sent as is. The mapping:

* an id already made of ASCII letters and digits is its own public id, unchanged;
* any other id ``x`` gets the alias ``PREFIX + base62(int.from_bytes(b"\\x01" + utf8(x)))``: the
  leading ``0x01`` byte keeps leading zero bytes, the base62 alphabet is ``0-9A-Za-z``. The alias is
  deterministic and reversible (:func:`internal_id`).

:func:`internal_id` decodes only a *canonical* alias (the exact string :func:`public_id` makes for an
id that is not alphanumeric); every other string is returned unchanged. So the only ids that cannot
be addressed are alphanumeric ids that equal such an alias, which begin with :data:`PREFIX`.

Pure: no I/O.
"""

from __future__ import annotations

import re

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PREFIX = "0z"  # marks an alias; followed by base62 digits
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
_ALNUM = re.compile(r"[0-9A-Za-z]+")


def is_public(value: str) -> bool:
    """True when ``value`` passes a Spotify client's id check (non-empty ASCII letters and digits)."""
    return bool(_ALNUM.fullmatch(value))


def _b62(n: int) -> str:
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(ALPHABET[r])
    return "".join(reversed(out)) or "0"


def public_id(internal: str) -> str:
    """The id a client sees for ``internal``: itself when alphanumeric, else its alias."""
    if is_public(internal):
        return internal
    return PREFIX + _b62(int.from_bytes(b"\x01" + internal.encode("utf-8"), "big"))


def internal_id(public: str) -> str:
    """The internal id of a public id (inverse of :func:`public_id`); other strings unchanged."""
    if not public.startswith(PREFIX) or len(public) <= len(PREFIX) or not is_public(public):
        return public
    n = 0
    for c in public[len(PREFIX):]:
        n = n * 62 + _INDEX[c]
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    if raw[:1] != b"\x01":
        return public
    try:
        decoded = raw[1:].decode("utf-8")
    except UnicodeDecodeError:
        return public
    return decoded if public_id(decoded) == public else public


def public_uri(kind: str, internal: str) -> str:
    """``spotify:<kind>:<public id>``."""
    return f"spotify:{kind}:{public_id(internal)}"
