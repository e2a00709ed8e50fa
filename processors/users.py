"""Users view: country, product, devices, GDPR erasure.

Key: ``user_id`` (the users topic's key). Events: ``user.registered``, ``subscription.changed``,
``device.registered``, ``user.erasure_requested``.

State, plain JSON-able data::

    {"user_id": str,
     "registered": bool,
     "plan": {"at", "event_id", "country", "product"} | None,   # latest registered/subscription.changed
     "name": {"at", "event_id", "display_name"} | None,         # latest user.registered (None once erased)
     "devices": {device_id: {"at", "event_id", "device_type", "name"}},  # latest per device; name None once erased
     "erased_at": int | None}                                   # earliest erasure request (event time)

Idempotency and order: each part is the latest (or, for the erasure, the earliest) by (occurred_at,
event_id), so duplicates change nothing and arrival order does not matter. Erasure is sticky: once a
``user.erasure_requested`` has been folded, no display name or device name is kept, including from
events that arrive later (late or replayed registrations carry the personal data again; it is dropped).
Country and product stay: they are what royalties and rights checks need, not personal data.

Outputs: ``{"kind": "view", "key": user_id, "view": to_view(state)}`` on change;
``{"kind": "dead_letter", "reason", "event"}`` for events this fold does not take.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

State = dict[str, Any]
Outputs = list[dict[str, Any]]
USER_TYPES = frozenset(
    {"user.registered", "subscription.changed", "device.registered", "user.erasure_requested"}
)


def new_state(user_id: str) -> State:
    return {
        "user_id": user_id,
        "registered": False,
        "plan": None,
        "name": None,
        "devices": {},
        "erased_at": None,
    }


def _later(event: Mapping[str, Any], current: Mapping[str, Any] | None) -> bool:
    return current is None or (event["occurred_at"], event["event_id"]) > (current["at"], current["event_id"])


def evolve(state: State | None, event: Mapping[str, Any]) -> tuple[State, Outputs]:
    """Fold one users-topic event into the state of its ``user_id``. The input state is not mutated."""
    etype = event.get("type")
    user_id = event.get("user_id")
    if state is None:
        state = new_state(user_id)  # type: ignore[arg-type]
    if etype not in USER_TYPES:
        return state, [_dead(event, f"the users fold does not take {etype!r} events")]
    if state["user_id"] != user_id:
        return state, [_dead(event, f"event for {user_id!r} reached the user state of {state['user_id']!r}")]
    at, eid = event["occurred_at"], event["event_id"]
    new = dict(state)
    if etype in ("user.registered", "subscription.changed"):
        if etype == "user.registered":
            new["registered"] = True
            if state["erased_at"] is None and _later(event, state["name"]):
                new["name"] = {"at": at, "event_id": eid, "display_name": event["display_name"]}
        if _later(event, state["plan"]):
            new["plan"] = {
                "at": at,
                "event_id": eid,
                "country": event["country"],
                "product": event["product"],
            }
    elif etype == "device.registered":
        device_id = event["device_id"]
        current = state["devices"].get(device_id)
        if _later(event, current):
            name = None if state["erased_at"] is not None else event["name"]
            device = {"at": at, "event_id": eid, "device_type": event["device_type"], "name": name}
            new["devices"] = {**state["devices"], device_id: device}
    else:  # user.erasure_requested
        erased_at = at if state["erased_at"] is None else min(state["erased_at"], at)
        new["erased_at"] = erased_at
        new["name"] = None
        new["devices"] = {d: {**dev, "name": None} for d, dev in state["devices"].items()}
    if new == state:
        return state, []
    return new, [{"kind": "view", "key": user_id, "view": to_view(new)}]


def _dead(event: Mapping[str, Any], reason: str) -> dict[str, Any]:
    return {"kind": "dead_letter", "reason": reason, "event": dict(event)}


def to_view(state: State) -> dict[str, Any]:
    """The user document: ``{"user_id", "registered", "country", "product", "display_name", "devices":
    [{"device_id", "device_type", "name"}] (sorted by id), "erased": bool}``. ``country``/``product``
    are None until a registration or subscription change is seen."""
    plan = state["plan"]
    name = state["name"]
    return {
        "user_id": state["user_id"],
        "registered": state["registered"],
        "country": plan["country"] if plan else None,
        "product": plan["product"] if plan else None,
        "display_name": name["display_name"] if name else None,
        "devices": [
            {"device_id": d, "device_type": dev["device_type"], "name": dev["name"]}
            for d, dev in sorted(state["devices"].items())
        ],
        "erased": state["erased_at"] is not None,
    }
