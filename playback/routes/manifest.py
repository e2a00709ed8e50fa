"""Routes: ``GET /v1/playback/{track_id}/manifest`` and ``GET /v1/playback/{track_id}/hls/master.m3u8``
(rights checked per request, the document cached per minute).

The manifest itself is built by the pure :func:`playback.manifest.build_manifest`; this route resolves
the track, checks the user's rights, and caches the serialized manifest per (track, tier, signing
window, renditions), since every request in the same minute gets the same signed URLs. Each
response also carries its own ``play_id``: a play grant (playback/grants.py) bound to the user, the
canonical track and the time of the request, the only play id ``POST /v1/events`` takes from a
client. Issuing it costs one HMAC: no Kafka round trip, no state.

The HLS master playlist (:func:`playback.hls.master_playlist`) takes the same path (:func:`_playable`:
same auth, rights check, 403/404 cases and tier rule) and is cached the same way; its play grant is
an ``#EXT-X-SESSION-DATA`` line (``DATA-ID="com.playlog.play_id"``). Its variant URIs are signed CDN
URLs of the media playlists, which players fetch without an ``Authorization`` header.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson
from aiohttp import web

from playback import hls
from playback import manifest as builder
from playback.grants import trust_of
from playback.parsing import ApiError, path_id, user_id
from playback.service import PlaybackApi, api_of
from playback.signing import TERRITORY_RE

MAX_CACHED = 20_000

routes = web.RouteTableDef()


@dataclass(frozen=True)
class Playable:
    """A track the calling user may play now, as both routes need it."""

    api: PlaybackApi
    track_id: str
    canon: str
    doc: dict
    ladder: list[dict]
    product: str
    country: str | None  # signed into the URLs: the CDN applies takedowns per territory
    now: float

    def cache_key(self, kind: str) -> tuple:
        return (kind, self.track_id, self.canon, self.product, self.country, builder.window_start(self.now),
                tuple(r["file_id"] for r in self.ladder))


def _playable(request: web.Request) -> Playable:
    """Resolve the track and check the user's rights: 403 for an unknown track or one not playable in
    the user's country, 404 when no audio is encoded for it yet."""
    api = api_of(request)
    track_id = path_id(request, "track_id")
    user = api.user(request)
    canon = api.replica.canonical_id(track_id)
    if canon is None:
        raise ApiError(403, f"Cannot play {track_id}: unknown track", reason="unknown track")
    api.check_playable(canon, user)
    doc = api.replica.track_doc(canon) or {}
    ladder = doc.get("ladder") or []
    if not ladder:
        raise ApiError(404, "No audio encoded for this track yet")
    country = user.get("country") or ""
    return Playable(api, track_id, canon, doc, ladder, user["product"],
                    country if TERRITORY_RE.fullmatch(country) else None, api.clock())


def _cached(api: PlaybackApi, key: tuple, build: Callable[[], bytes]) -> bytes:
    """The serialized document under ``key`` in the API's per-minute cache, built on a miss."""
    body = api.manifests.get(key)
    if body is None:
        body = build()
        if len(api.manifests) > MAX_CACHED:
            api.manifests.clear()
        api.manifests[key] = body
    return body


@routes.get("/v1/playback/{track_id}/manifest", allow_head=False)
async def manifest(request: web.Request) -> web.Response:
    p = _playable(request)
    api = p.api
    body = _cached(api, p.cache_key("manifest"), lambda: orjson.dumps(builder.build_manifest(
        p.ladder, p.product, api.signer, p.now, cdn_base=api.cdn_base, track_id=p.track_id,
        canonical_id=p.canon, territory=p.country)))
    play_id = trust_of(api).grants.issue(user_id(request), p.canon, api.now_ms())
    return web.Response(body=builder.with_play_id(body, play_id), content_type="application/json")


@routes.get("/v1/playback/{track_id}/hls/master.m3u8", allow_head=False)
async def hls_master(request: web.Request) -> web.Response:
    p = _playable(request)
    api = p.api
    if not hls.hls_rungs(p.ladder, p.product):
        raise ApiError(404, "No HLS rendition (AAC) of this track for your plan")
    duration = p.doc.get("duration_ms")
    body = _cached(api, p.cache_key("hls"), lambda: hls.master_playlist(
        p.ladder, p.product, api.signer, p.now, cdn_base=api.cdn_base, territory=p.country,
        duration_ms=duration if isinstance(duration, int) else None).encode())
    play_id = trust_of(api).grants.issue(user_id(request), p.canon, api.now_ms())
    text = hls.with_play_id(body.decode(), play_id)
    return web.Response(text=text, content_type=hls.PLAYLIST_CONTENT_TYPE, charset="utf-8",
                        headers={"Cache-Control": "private, no-store"})
