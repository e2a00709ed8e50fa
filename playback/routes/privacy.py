"""Route: ``GET /v1/me/export``, the GDPR export of the caller (:mod:`playback.gdpr_export`)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from playback.gdpr_export import export_user
from playback.parsing import json_response, user_id
from playback.service import api_of

routes = web.RouteTableDef()


@routes.get("/v1/me/export", allow_head=False)
async def export(request: web.Request) -> web.Response:
    api = api_of(request)
    uid = user_id(request)
    doc = await asyncio.get_running_loop().run_in_executor(None, export_user, api.settings, uid, api.now_ms())
    return json_response(doc)
