"""Route: ``POST /v1/events``, a batch of client listening events (``play.*``), validated and produced.

Every valid event of a batch is produced; if any is invalid the answer is 400 listing each rejected
event (index, reason) *and* the number accepted (the valid ones are not lost); otherwise 202. An event
must be a ``play.*`` type and carry the token's user id.
"""

from __future__ import annotations

from aiohttp import web

from playback.parsing import ApiError, json_body, json_response, user_id
from playback.service import api_of
from processors.rules import PLAY_TYPES
from schemas.codec import EventError

MAX_EVENTS = 1000

routes = web.RouteTableDef()


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
    good: list[dict] = []
    rejected: list[dict] = []
    for i, obj in enumerate(items):
        try:
            event = api.codec.from_json(obj)
            if event["type"] not in PLAY_TYPES:
                raise EventError(f"{event['type']} is not a client listening event "
                                 f"(expected one of {', '.join(sorted(PLAY_TYPES))})")
            if event["user_id"] != uid:
                raise EventError("user_id does not match the access token")
        except EventError as exc:
            rejected.append({"index": i, "event_id": obj.get("event_id") if isinstance(obj, dict) else None,
                             "reason": str(exc)})
            continue
        good.append(event)
    if good:
        await api.produce(good)
    if rejected:
        return json_response({
            "error": {"status": 400, "message": f"{len(rejected)} of {len(items)} events rejected; "
                                                f"the {len(good)} valid ones were recorded"},
            "accepted": len(good), "rejected": rejected,
        }, 400)
    return json_response({"accepted": len(good)}, 202)
