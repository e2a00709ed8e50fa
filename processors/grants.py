"""Play grants and the client-event rule, pure: what a client event must be to count (no key needed).

DESIGN.md "The trust boundary": a client can only report plays the server issued. The manifest
(``GET /v1/playback/{track_id}/manifest``) hands out a **play grant** as the play's ``play_id``: a
stateless, signed string bound to the user, the (canonical) track and the issue time::

    g1.<issued_ms>.<nonce>.<b64u(user_id)>.<b64u(track_id)>.<sig>

- ``issued_ms``: decimal epoch ms of the issue (no sign, no leading zero, at most 15 digits);
- ``nonce``: 16 base64url characters (12 random bytes), so every manifest request is a new play;
- ``b64u(x)``: unpadded base64url of the UTF-8 bytes of ``x`` (so ids may hold any character and the
  grant still splits on ``.`` unambiguously);
- ``sig``: unpadded base64url of the first 16 bytes of HMAC-SHA256(key, everything before ``.<sig>``)
  with ``key = HMAC-SHA256(PLAYLOG_TOKEN_SECRET, "play-grant")`` (playback/grants.py signs and checks it).

Everything but the signature is readable without the key, and that is all the fold needs: a
client event (one that carries ``received_at``, the API's stamp) counts only when its ``play_id`` is
a grant of **its** user and track and its times fit the grant (processors/rules.py)::

    issued - CLIENT_SKEW_MS <= occurred_at <= received_at + CLIENT_SKEW_MS
    issued - CLIENT_SKEW_MS <= received_at,   received_at - issued <= OFFLINE_LICENCE_MS

:func:`client_event_reason` decides it from the event alone (no key, no clock), so the live path,
a replay months later and the SQL engine (which checks the same text with the same regular
expression and by encoding the event's ids) agree. Events without ``received_at`` (trusted
producers: ``playlog produce``, ingest, the finance job) are judged by the royalty rules alone.
The signature is checked by the API before it writes the event: the log only holds events the API
accepted, or trusted ones (whose producers could write anything anyway).
"""

from __future__ import annotations

import base64
import re
from typing import NamedTuple

from core.timefmt import format_ts
from processors.rules import CLIENT_SKEW_MS, OFFLINE_LICENCE_MS, PLAY_TYPES
from schemas.codec import EventError

VERSION = "g1"
NONCE_CHARS = 16
SIG_BYTES = 16  # HMAC-SHA256 truncated to 128 bits
SIG_CHARS = 22  # unpadded base64url of SIG_BYTES
_B64 = "[A-Za-z0-9_-]"
#: the grant's shape; the SQL engine uses this very text (RE2 and Python's re agree on it)
GRANT_PATTERN = (rf"{VERSION}\.(0|[1-9][0-9]{{0,14}})\.({_B64}{{{NONCE_CHARS}}})\.({_B64}*)\.({_B64}*)"
                 rf"\.({_B64}{{{SIG_CHARS}}})")
_GRANT = re.compile(GRANT_PATTERN)
_NONCE = re.compile(f"{_B64}{{{NONCE_CHARS}}}")
_SIG = re.compile(f"{_B64}{{{SIG_CHARS}}}")
MAX_ISSUED_MS = 10**15 - 1


def b64u(text: str) -> str:
    """Unpadded base64url of the UTF-8 bytes of ``text``."""
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).rstrip(b"=").decode("ascii")


def _unb64u(part: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


class GrantClaims(NamedTuple):
    """The readable parts of a play grant (see the module doc)."""

    issued_ms: int
    nonce: str
    user_b64: str
    track_b64: str
    sig: str

    @property
    def body(self) -> str:
        """What the signature covers: the grant without ``.<sig>``."""
        return f"{VERSION}.{self.issued_ms}.{self.nonce}.{self.user_b64}.{self.track_b64}"

    @property
    def user_id(self) -> str | None:
        return _unb64u(self.user_b64)

    @property
    def track_id(self) -> str | None:
        return _unb64u(self.track_b64)

    def binds(self, user_id: str, track_id: str) -> bool:
        return self.user_b64 == b64u(user_id) and self.track_b64 == b64u(track_id)


def grant_body(user_id: str, track_id: str, issued_ms: int, nonce: str) -> str:
    """The signed part of a grant for ``user_id`` and ``track_id`` issued at ``issued_ms``."""
    if not 0 <= issued_ms <= MAX_ISSUED_MS:
        raise ValueError(f"issued_ms must be within 0..{MAX_ISSUED_MS}, got {issued_ms}")
    if not _NONCE.fullmatch(nonce):
        raise ValueError(f"a grant nonce is {NONCE_CHARS} base64url characters, got {nonce!r}")
    return f"{VERSION}.{int(issued_ms)}.{nonce}.{b64u(user_id)}.{b64u(track_id)}"


def format_grant(user_id: str, track_id: str, issued_ms: int, nonce: str, sig: str) -> str:
    """A grant string (playback/grants.py computes ``sig``; tests may pass any well-formed one)."""
    if not _SIG.fullmatch(sig):
        raise ValueError(f"a grant signature is {SIG_CHARS} base64url characters, got {sig!r}")
    return f"{grant_body(user_id, track_id, issued_ms, nonce)}.{sig}"


def parse_grant(play_id: object) -> GrantClaims | None:
    """The claims of a well-formed grant, None for anything else (the signature is not checked)."""
    m = _GRANT.fullmatch(play_id) if isinstance(play_id, str) else None
    if m is None:
        return None
    issued, nonce, user, track, sig = m.groups()
    return GrantClaims(int(issued), nonce, user, track, sig)


def _when(ms: int) -> str:
    try:
        return format_ts(ms)
    except (ValueError, OverflowError, OSError):
        return f"{ms} ms"


_SKEW_MIN = CLIENT_SKEW_MS // 60_000
_OFFLINE_DAYS = OFFLINE_LICENCE_MS // 86_400_000


def client_event_reason(event: dict) -> str | None:
    """Why a client event (one with ``received_at``) counts nowhere, worded like every bad-input
    reason (``"<type>: <why>"``); None for a client event that may count, and for every event
    without ``received_at`` (trusted producers) or of another type."""
    received = event.get("received_at")
    etype = event.get("type")
    if received is None or not isinstance(etype, str) or etype not in PLAY_TYPES:
        return None
    g = parse_grant(event["play_id"])
    if g is None:
        return f"{etype}: play_id is not a server-issued play (a client play needs the play_id of its manifest)"
    if g.user_b64 != b64u(event["user_id"]):
        return f"{etype}: play_id was issued to another user"
    if g.track_b64 != b64u(event["track_id"]):
        return f"{etype}: play_id was issued for another track"
    issued, occurred = g.issued_ms, event["occurred_at"]
    if received < issued - CLIENT_SKEW_MS:
        return (f"{etype}: received_at {_when(received)} is before the play was issued ({_when(issued)}, "
                f"{_SKEW_MIN} min tolerance)")
    if received - issued > OFFLINE_LICENCE_MS:
        return (f"{etype}: received_at {_when(received)} is more than {_OFFLINE_DAYS} days after the play was "
                f"issued ({_when(issued)}): past the offline licence window")
    if occurred < issued - CLIENT_SKEW_MS:
        return (f"{etype}: occurred_at {_when(occurred)} is before the play was issued ({_when(issued)}, "
                f"{_SKEW_MIN} min tolerance)")
    if occurred > received + CLIENT_SKEW_MS:
        return (f"{etype}: occurred_at {_when(occurred)} is after the event was received ({_when(received)}, "
                f"{_SKEW_MIN} min tolerance)")
    return None


def check_client_event(event: dict) -> dict:
    """The event if :func:`client_event_reason` finds nothing; EventError with the reason otherwise.
    The hook for the decode-and-validate step (see the report): ``check_client_event(decode_record(...))``."""
    reason = client_event_reason(event)
    if reason:
        raise EventError(reason)
    return event
