"""Route: ``GET /v1/me``, the token user's profile (the users view's document)."""

from __future__ import annotations

from aiohttp import web

from playback import render
from playback.parsing import base_url, json_response, user_id
from playback.service import api_of

routes = web.RouteTableDef()


@routes.get("/v1/me", allow_head=False)
@routes.get("/v1/me/", allow_head=False)  # spotipy's current_user() asks for "me/"
async def me(request: web.Request) -> web.Response:
    api = api_of(request)
    api.user(request)  # 403 for a token whose user the users view does not know
    uid = user_id(request)
    return json_response(render.user_object(base_url(request), uid, api.replica.users.get(uid)))
