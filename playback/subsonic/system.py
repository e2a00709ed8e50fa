"""System methods: ``ping``, ``getLicense``, ``getOpenSubsonicExtensions``, ``tokenInfo``,
``getMusicFolders``, ``getUser``.

- ``getOpenSubsonicExtensions`` answers without credentials (the OpenSubsonic rule): it lists
  ``apiKeyAuthentication`` (v1: the ``apiKey`` parameter and ``tokenInfo``) and ``formPost`` (v1:
  parameters in a form body).
- One music folder (id 1) holds the whole catalog.
- ``getUser`` answers for the caller only (anyone else: code 50, as for a non-admin on Subsonic): the
  roles a listener has here (stream, playlists, scrobbling; no admin, upload, jukebox, podcasts,
  sharing); ``maxBitRate`` is the tier's ceiling (free: 160 kbps; premium: 0, none).
"""

from __future__ import annotations

from typing import Any

from playback.subsonic.context import Ctx, method
from playback.subsonic.objects import MUSIC_FOLDER
from playback.subsonic.render import Code, SubsonicError
from processors.rules import FREE_MAX_KBPS

EXTENSIONS = [{"name": "apiKeyAuthentication", "versions": [1]}, {"name": "formPost", "versions": [1]}]


@method("ping")
async def ping(ctx: Ctx) -> dict[str, Any]:
    return {}


@method("getLicense")
async def get_license(ctx: Ctx) -> dict[str, Any]:
    return {"license": {"valid": True}}


@method("getOpenSubsonicExtensions", public=True)
async def get_extensions(ctx: Ctx) -> dict[str, Any]:
    return {"openSubsonicExtensions": EXTENSIONS}


@method("tokenInfo")
async def token_info(ctx: Ctx) -> dict[str, Any]:
    return {"tokenInfo": {"username": ctx.user_id}}


@method("getMusicFolders")
async def get_music_folders(ctx: Ctx) -> dict[str, Any]:
    return {"musicFolders": {"musicFolder": [MUSIC_FOLDER]}}


@method("getUser")
async def get_user(ctx: Ctx) -> dict[str, Any]:
    username = ctx.params.str("username") or ctx.user_id
    if username != ctx.user_id:
        raise SubsonicError(Code.NOT_AUTHORIZED, "Only your own user can be read")
    doc = ctx.user_doc() or {}
    roles = {f"{r}Role": r in ("stream", "playlist") for r in (
        "admin", "settings", "download", "upload", "playlist", "coverArt", "comment", "podcast", "stream",
        "jukebox", "share", "videoConversion")}
    roles["coverArtRole"] = True
    return {"user": {"username": ctx.user_id, "email": None, "scrobblingEnabled": True,
                     "maxBitRate": FREE_MAX_KBPS if doc.get("product") != "premium" else 0, **roles,
                     "folder": [MUSIC_FOLDER["id"]]}}
