"""Route: ``POST /v1/events``, a batch of client listening events (``play.*``), checked at the trust
boundary and produced.

Every valid event of a batch is produced; if any is invalid the answer is 400 listing each rejected
event (index, event_id, reason) *and* the number accepted (the valid ones are not lost); otherwise
202. The client is not the authority on who, where, which tier, which play or when (DESIGN.md
"The trust boundary"); an event is accepted only when:

- it is a ``play.*`` event of the token's user;
- its ``country`` and ``product`` are the user's, from the users view (the API fills them in when
  the client leaves them out, and refuses the event, naming the field, when they differ);
- its ``play_id`` is a play grant this server issued (``GET /v1/playback/{track_id}/manifest``):
  signature, issued to this user, for this track (an alias id of the granted track is accepted and
  recorded as the granted, canonical id);
- stamped with ``received_at`` (the time the API received it), it passes the client-event rule
  every reader applies (processors/grants.py: issued - 5 min <= occurred_at <= received_at + 5 min,
  received_at - issued <= 30 days, the offline licence window), so the live view and a replay
  months later judge it by that stamp, never by their own clock;
- its ``event_id`` is not one this API process accepted before (a bounded in-memory set of the most
  recent :data:`playback.grants.MAX_RECENT_EVENT_IDS` ids; an older replay, or one sent to another
  API process, is not caught here).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from playback.grants import ClientTrust, trust_of
from playback.parsing import ApiError, json_body, json_response, user_id
from playback.service import PlaybackApi, api_of
from processors.grants import b64u, client_event_reason
from processors.rules import PLAY_TYPES
from schemas.codec import EventError

MAX_EVENTS = 1000
DECIDED = ("country", "product")  # what the server decides from the users view

routes = web.RouteTableDef()


def client_event(api: PlaybackApi, trust: ClientTrust, obj: Any, uid: str, profile: dict[str, str] | None,
                 now_ms: int) -> dict:
    """The event to record for one client object, or EventError with the reason."""
    if not isinstance(obj, dict):
        raise EventError(f"expected a JSON object, got {type(obj).__name__}")
    etype = obj.get("type")
    if not isinstance(etype, str) or etype not in PLAY_TYPES:  # a dict or list type is unhashable: check first
        raise EventError(f"{etype!r} is not a client listening event (expected one of {', '.join(sorted(PLAY_TYPES))})")
    obj = {k: v for k, v in obj.items() if k != "received_at"}  # the server's stamp, never the client's
    if profile is not None:
        for f in DECIDED:
            if obj.get(f) is None:
                obj[f] = profile[f]
    event = api.codec.from_json(obj)
    if event["user_id"] != uid:
        raise EventError("user_id does not match the access token")
    if profile is None:
        raise EventError("user is not registered (no country/product in the users view)")
    for f in DECIDED:
        if event[f] != profile[f]:
            raise EventError(f"{etype}: {f} {event[f]!r} differs from the user's {f} {profile[f]!r} "
                             f"(the server decides it: leave it out)")
    claims, why = trust.grants.verify(event["play_id"])
    if claims is None:
        raise EventError(f"{etype}: {why}")
    if claims.user_b64 != b64u(uid):
        raise EventError(f"{etype}: play_id was issued to another user")
    granted = claims.track_id
    if granted is None:
        raise EventError(f"{etype}: play_id was issued for another track")
    if event["track_id"] != granted:
        canon = api.replica.canonical_id(event["track_id"])
        if canon is None or canon != api.replica.canonical_id(granted):
            raise EventError(f"{etype}: play_id was issued for another track")
        event["track_id"] = granted  # the issued (canonical) id: what every reader compares with the grant
    event["received_at"] = now_ms
    reason = client_event_reason(event)
    if reason:
        raise EventError(reason)
    return event


@routes.post("/v1/events")
async def events(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    body = await json_body(request)
    items = body.get("events") if isinstance(body, dict) else body
    if not isinstance(items, list) or not items:
        raise ApiError(400, 'Expected {"events": [...]} (or a JSON array) with at least one event')
    if len(items) > MAX_EVENTS:
        raise ApiError(400, f"At most {MAX_EVENTS} events per batch")
    trust = trust_of(api)
    doc = api.replica.users.get(uid)
    profile = {f: doc[f] for f in DECIDED} if doc and all(doc.get(f) for f in DECIDED) else None
    now_ms = api.now_ms()
    good: list[dict] = []
    rejected: list[dict] = []
    for i, obj in enumerate(items):
        try:
            event = client_event(api, trust, obj, uid, profile, now_ms)
            if not trust.seen.add(event["event_id"]):
                raise EventError(f"event_id {event['event_id']!r} was already recorded (a client event is sent once)")
        except EventError as exc:
            rejected.append({"index": i, "event_id": obj.get("event_id") if isinstance(obj, dict) else None,
                             "reason": str(exc)})
            continue
        good.append(event)
    if good:
        try:
            await api.produce(good)
        except ApiError:  # not recorded: the client may send these again
            for e in good:
                trust.seen.discard(e["event_id"])
            raise
    if rejected:
        return json_response({
            "error": {"status": 400, "message": f"{len(rejected)} of {len(items)} events rejected; "
                                                f"the {len(good)} valid ones were recorded"},
            "accepted": len(good), "rejected": rejected,
        }, 400)
    return json_response({"accepted": len(good)}, 202)
