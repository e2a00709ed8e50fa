"""What a Subsonic handler gets (:class:`Ctx`) and the registry of methods (:func:`method`).

A handler is ``async def handler(ctx: Ctx) -> dict | web.StreamResponse``: a dict is the payload of
an "ok" ``subsonic-response`` (playback/subsonic/render.py), a stream response is sent as it is
(``stream``, ``getCoverArt``); a :class:`~playback.subsonic.render.SubsonicError` it raises is
answered in the Subsonic error model. Handlers register under their Subsonic name with
:func:`method`; playback/subsonic/routes.py dispatches to them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from playback.service import PlaybackApi
from playback.subsonic.objects import Objects
from playback.subsonic.params import Params, method_key
from playback.subsonic.render import Code, SubsonicError

Handler = Callable[["Ctx"], Awaitable[dict[str, Any] | web.StreamResponse]]


@dataclass(frozen=True)
class Method:
    name: str
    handler: Handler
    public: bool = False  # answered without credentials (OpenSubsonic: getOpenSubsonicExtensions)


METHODS: dict[str, Method] = {}


def method(name: str, *, public: bool = False) -> Callable[[Handler], Handler]:
    """Register ``handler`` as the Subsonic method ``name`` (matched without case, with or without ``.view``)."""

    def register(handler: Handler) -> Handler:
        METHODS[method_key(name)] = Method(name, handler, public)
        return handler

    return register


@dataclass
class Ctx:
    """One Subsonic request: the API, the aiohttp request, its parameters, the authenticated user
    (empty for a public method called without credentials) and the client name (``c``)."""

    api: PlaybackApi
    request: web.Request
    params: Params
    user_id: str
    client: str

    @property
    def replica(self) -> Any:
        return self.api.replica

    def user_doc(self) -> dict | None:
        return self.api.replica.users.get(self.user_id)

    def profile(self) -> dict:
        """The user's document with country and product; code 50 when the users view does not know them
        (a user without a plan may browse, not play)."""
        doc = self.user_doc()
        if doc is None or not doc.get("country") or not doc.get("product"):
            raise SubsonicError(Code.NOT_AUTHORIZED, "user is not registered (no country/product in the users view)")
        return doc

    def product(self) -> str:
        doc = self.user_doc() or {}
        return doc.get("product") or "free"

    def objects(self) -> Objects:
        return Objects(self.api.replica, self.user_id, self.product(), self.api.now_ms())

    def canonical_track(self, track_id: str) -> str:
        """The canonical id of an ingested track; code 70 otherwise."""
        canon = self.api.replica.canonical_id(track_id)
        doc = self.api.replica.tracks.get(canon) if canon else None
        if canon is None or doc is None or not doc.get("ingested"):
            raise SubsonicError(Code.NOT_FOUND, f"Song not found: {track_id[:80]}")
        return canon
