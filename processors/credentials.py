"""Credentials view: the app passwords of the Subsonic API, from ``app_password.*`` events.

Key: ``user_id``. Events: ``app_password.issued`` (user_id, password_id, ciphertext) and
``app_password.revoked`` (user_id, password_id | null = every password issued before it) from the
credentials topic, and ``user.erasure_requested`` from the users topic (GDPR erasure revokes every
app password, for good).

The ciphertext is opaque here: ``playlog subsonic password`` encrypts the password (AES-GCM with a key
derived from PLAYLOG_PII_MASTER_KEY, playback/subsonic/secrets.py) before the event is written, and
only the API decrypts it, because Subsonic token auth (``t = md5(password + salt)``) needs the
plaintext on the server. No fold, view or topic ever holds a plaintext password.

State, plain JSON-able data::

    {"user_id": str,
     "issued": {password_id: {"at", "event_id", "ciphertext"}},
     "revoked": {password_id: [at, event_id]},      # revocations of one password (permanent)
     "revoked_all": [at, event_id] | None,          # latest "revoke every password issued before"
     "erased_at": int | None}                       # earliest erasure request (event time)

Order and idempotency: a password is active when it was issued, is not revoked by id, was issued
after (by (occurred_at, event_id)) the latest revoke-all, and the user is not erased. Each part is a
set or a latest/earliest by (occurred_at, event_id), so duplicates change nothing and arrival order
does not matter. Erasure is sticky: the ciphertexts are dropped and later issues are ignored.

Outputs: ``{"kind": "view", "key": user_id, "view": to_view(state)}`` on change;
``{"kind": "dead_letter", "reason", "event"}`` for events this fold does not take.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

State = dict[str, Any]
Outputs = list[dict[str, Any]]
APP_PASSWORD_TYPES = frozenset({"app_password.issued", "app_password.revoked"})
CREDENTIAL_TYPES = APP_PASSWORD_TYPES | {"user.erasure_requested"}


def new_state(user_id: str) -> State:
    return {"user_id": user_id, "issued": {}, "revoked": {}, "revoked_all": None, "erased_at": None}


def evolve(state: State | None, event: Mapping[str, Any]) -> tuple[State, Outputs]:
    """Fold one event into the credentials of its ``user_id``. The input state is not mutated."""
    etype = event.get("type")
    user_id = event.get("user_id")
    if state is None:
        state = new_state(user_id)  # type: ignore[arg-type]
    if etype not in CREDENTIAL_TYPES:
        return state, [_dead(event, f"the credentials fold does not take {etype!r} events")]
    if state["user_id"] != user_id:
        return state, [_dead(event, f"event for {user_id!r} reached the credentials of {state['user_id']!r}")]
    new = _apply(state, event)
    if new == state:
        return state, []
    return new, [{"kind": "view", "key": user_id, "view": to_view(new)}]


def _apply(state: State, event: Mapping[str, Any]) -> State:
    etype = event["type"]
    mark = [event["occurred_at"], event["event_id"]]
    if etype == "user.erasure_requested":
        erased = event["occurred_at"] if state["erased_at"] is None else min(state["erased_at"], event["occurred_at"])
        return {**state, "issued": {}, "erased_at": erased}
    if etype == "app_password.issued":
        if state["erased_at"] is not None:
            return state
        pid = event["password_id"]
        current = state["issued"].get(pid)
        if current is not None and (current["at"], current["event_id"]) <= tuple(mark):
            return state
        entry = {"at": event["occurred_at"], "event_id": event["event_id"], "ciphertext": event["ciphertext"]}
        return {**state, "issued": {**state["issued"], pid: entry}}
    pid = event["password_id"]  # app_password.revoked
    if pid is None:
        if state["revoked_all"] is not None and tuple(state["revoked_all"]) >= tuple(mark):
            return state
        return {**state, "revoked_all": mark}
    current = state["revoked"].get(pid)
    if current is not None and tuple(current) <= tuple(mark):
        return state
    return {**state, "revoked": {**state["revoked"], pid: mark}}


def _dead(event: Mapping[str, Any], reason: str) -> dict[str, Any]:
    return {"kind": "dead_letter", "reason": reason, "event": dict(event)}


def active(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The active passwords ``{"password_id", "issued_at", "ciphertext"}``, oldest first."""
    if state.get("erased_at") is not None:
        return []
    floor = tuple(state["revoked_all"]) if state.get("revoked_all") else None
    rows = []
    for pid, entry in state["issued"].items():
        if pid in state["revoked"]:
            continue
        if floor is not None and (entry["at"], entry["event_id"]) <= floor:
            continue
        rows.append(((entry["at"], entry["event_id"]),
                     {"password_id": pid, "issued_at": entry["at"], "ciphertext": entry["ciphertext"]}))
    return [row for _, row in sorted(rows, key=lambda r: r[0])]


def to_view(state: Mapping[str, Any]) -> dict[str, Any]:
    """The credentials document: ``{"user_id", "passwords": active(state)}`` (revoked ones left out)."""
    return {"user_id": state["user_id"], "passwords": active(state)}
