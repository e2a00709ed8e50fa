"""Route: ``GET /v1/playback/{track_id}/manifest`` (rights checked per request, manifest cached per minute).

The manifest itself is built by the pure :func:`playback.manifest.build_manifest`; this route resolves
the track, checks the user's rights, and caches the serialized manifest per (track, tier, signing
window, renditions), since every request in the same minute gets the same signed URLs. Each
response also carries its own ``play_id``: a play grant (playback/grants.py) bound to the user, the
canonical track and the time of the request, the only play id ``POST /v1/events`` takes from a
client. Issuing it costs one HMAC: no Kafka round trip, no state.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from playback import manifest as builder
from playback.grants import trust_of
from playback.parsing import ApiError, user_id, valid_id
from playback.service import api_of
from playback.signing import TERRITORY_RE

MAX_CACHED = 20_000

routes = web.RouteTableDef()


@routes.get("/v1/playback/{track_id}/manifest", allow_head=False)
async def manifest(request: web.Request) -> web.Response:
    api = api_of(request)
    track_id = valid_id(request.match_info["track_id"])
    user = api.user(request)
    canon = api.replica.canonical_id(track_id)
    if canon is None:
        raise ApiError(403, f"Cannot play {track_id}: unknown track", reason="unknown track")
    api.check_playable(canon, user)
    doc = api.replica.track_doc(canon) or {}
    ladder = doc.get("ladder") or []
    if not ladder:
        raise ApiError(404, "No audio encoded for this track yet")
    product = user["product"]
    now = api.clock()
    country = user.get("country") or ""  # signed into the URLs: the CDN applies takedowns per territory
    country = country if TERRITORY_RE.fullmatch(country) else None
    key = (track_id, canon, product, country, builder.window_start(now), tuple(r["file_id"] for r in ladder))
    body = api.manifests.get(key)
    if body is None:
        body = orjson.dumps(builder.build_manifest(ladder, product, api.signer, now, cdn_base=api.cdn_base,
                                                   track_id=track_id, canonical_id=canon, territory=country))
        if len(api.manifests) > MAX_CACHED:
            api.manifests.clear()
        api.manifests[key] = body
    play_id = trust_of(api).grants.issue(user_id(request), canon, api.now_ms())
    return web.Response(body=builder.with_play_id(body, play_id), content_type="application/json")
