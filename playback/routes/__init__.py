"""The playback API's routes, one module per resource; :data:`TABLES` lists them in registration order.

Each module holds a ``routes`` :class:`aiohttp.web.RouteTableDef`; handlers reach the shared
:class:`playback.service.PlaybackApi` with :func:`playback.service.api_of`. ``/openapi.json``
(:mod:`playback.openapi`) must describe every ``/v1`` route registered here.
"""

from __future__ import annotations

from aiohttp import web

from playback.routes import (
    catalog,
    events,
    home,
    manifest,
    me,
    ops,
    personal,
    player,
    playlists,
    privacy,
    recs,
    social,
)

TABLES: tuple[web.RouteTableDef, ...] = (
    catalog.routes, player.routes, manifest.routes, events.routes, home.routes, playlists.routes, me.routes,
    ops.routes, privacy.routes, personal.routes, social.routes, recs.routes,
)
