"""The thin playback HTTP API (spec/api.md "HTTP API"), shaped like the Spotify Web API.

Stack: aiohttp (already installed as Faust's web server, and used by the CDN), so the API, the
CDN and the workers share one asyncio stack and one set of operational habits; an aiohttp handler
that only reads in-memory dicts answers in well under a millisecond on this machine.

Reads come from the in-memory :class:`playback.replica.Replica` (no network round trip on the
play -> manifest path); every write produces an event (through :class:`KafkaPublisher`, awaiting
the broker's acknowledgement before answering) and is then recorded as *pending* on the replica
so the caller's next read reflects it (read-your-writes, see replica.py). Before producing a
player or playlist event the API folds it locally with the same pure fold the worker runs: an
event the fold would refuse (forbidden edit, nothing to resume, bad position) is answered with
403/400 and never produced.

Policies (documented decisions):

- Auth: ``Authorization: Bearer <token>`` on every ``/v1`` route (``playlog token USER_ID``); 401 for a
  missing, bad or expired token (``WWW-Authenticate: Bearer``), 403 for a forbidden action.
- Users: country and product come from ``view.users``. Routes that need them (play, manifest, home)
  answer 403 "user is not registered" for a user the view does not know; search and track lookups
  work without it (no ``market`` then, unless given).
- Rights: per territory (events carry no per-product rights); the tier decides the manifest rungs
  (free: up to 160 kbps; premium: all). Unknown track, taken down, not licensed -> 403 with the reason.
- ``POST /v1/events``: every valid event of a batch is produced; if any is invalid the answer is 400
  listing each rejected event (index, reason) *and* the number accepted (the valid ones are not lost);
  otherwise 202. A client must not resend the accepted ones (they would be deduplicated by event_id
  downstream anyway).
- Playlists: ``snapshot_id`` given with an edit must be the current one, else 409 (optimistic
  concurrency); playlists are readable by anyone with the id (as on Spotify), editable by the owner
  and, when collaborative, by collaborators.
- Manifests: URLs are signed with ``exp`` on a 60 s grid (``exp = floor(now/60)*60 + TTL``), so every
  request in the same minute gets the same URLs (cacheable by browsers and the CDN) and the API
  caches the serialized manifest per (track, tier, minute); rights are still checked per request.
  Loudness gain: ``-14 - loudness_lufs`` dB, a positive gain capped so the true peak stays <= -1 dBTP.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from core.timefmt import format_ts
from playback import auth
from playback.replica import Replica
from playback.search import popularity_of
from playback.signing import Signer, segment_path
from processors import home as home_fold
from processors import player as player_fold
from processors import playlists as playlists_fold
from schemas.codec import EventError, default_codec

log = logging.getLogger(__name__)

TARGET_LUFS = -14.0
PEAK_CEILING_DBTP = -1.0
FREE_MAX_KBPS = 160
URL_TTL_S = 3600
EXP_GRID_S = 60
MAX_BODY = 1 << 20
MAX_EVENTS = 1000
PLAY_TYPES = frozenset({"play.started", "play.progress", "play.skipped", "play.completed"})
SEARCH_TYPES = ("track", "artist", "album")
USER_KEY = web.RequestKey("user_id", str)
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


# ==================================================================================================
# publishing


class PublishError(Exception):
    """An event could not be delivered to Kafka (the API answers 503)."""


class KafkaPublisher:
    """Produce events with confluent-kafka and await each delivery report from asyncio."""

    def __init__(self, settings: Any, codec: Any = None):
        from confluent_kafka import Producer

        from topics.kafka_io import producer_config

        self.codec = codec or default_codec()
        self.prefix = settings.topic_prefix
        self._producer = Producer(producer_config(settings, **{"linger.ms": 1, "message.timeout.ms": 15_000}))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="api-producer", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    async def publish(self, events: list[dict]) -> None:
        from topics.topic_catalog import key_of, topic_of

        loop = asyncio.get_running_loop()
        futures = []
        for event in events:
            fut = loop.create_future()

            def done(err: Any, msg: Any, fut: asyncio.Future = fut) -> None:
                loop.call_soon_threadsafe(_settle, fut, err)

            try:
                self._producer.produce(self.prefix + topic_of(event["type"]), self.codec.encode(event),
                                       key_of(event), on_delivery=done)
            except BufferError:
                raise PublishError("the producer queue is full") from None
            futures.append(fut)
        try:
            await asyncio.wait_for(asyncio.gather(*futures), timeout=20)
        except TimeoutError:
            raise PublishError("the broker did not acknowledge in time") from None

    def publish_nowait(self, events: list[dict], on_failure: Callable[[dict, str], None]) -> None:
        """Queue events without waiting for the broker (idempotent producer, retried until
        message.timeout.ms); ``on_failure(event, reason)`` runs (on the poll thread) if one is lost."""
        from topics.topic_catalog import key_of, topic_of

        for event in events:
            def done(err: Any, msg: Any, event: dict = event) -> None:
                if err is not None:
                    on_failure(event, str(err))

            try:
                self._producer.produce(self.prefix + topic_of(event["type"]), self.codec.encode(event),
                                       key_of(event), on_delivery=done)
            except BufferError:
                raise PublishError("the producer queue is full") from None

    def close(self) -> None:
        self._producer.flush(10)
        self._stop.set()
        self._thread.join(2)


def _settle(fut: asyncio.Future, err: Any) -> None:
    if fut.done():
        return
    if err is None:
        fut.set_result(None)
    else:
        fut.set_exception(PublishError(str(err)))


@dataclass
class MemoryPublisher:
    """A publisher that keeps events in a list (tests; ``on_publish`` may feed a fake worker)."""

    events: list[dict] = field(default_factory=list)
    on_publish: Callable[[list[dict]], None] | None = None
    fail: bool = False

    async def publish(self, events: list[dict]) -> None:
        if self.fail:
            raise PublishError("publishing disabled")
        self.events.extend(events)
        if self.on_publish is not None:
            self.on_publish(events)

    def publish_nowait(self, events: list[dict], on_failure: Callable[[dict, str], None]) -> None:
        if self.fail:
            raise PublishError("publishing disabled")
        self.events.extend(events)
        if self.on_publish is not None:
            self.on_publish(events)

    def close(self) -> None:
        pass


# ==================================================================================================
# helpers


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def error_response(status: int, message: str, **extra: Any) -> web.Response:
    resp = json_response({"error": {"status": status, "message": message}, **extra}, status)
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="playlog"'
    return resp


def new_id(n: int = 22) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(n))


def _int_param(request: web.Request, name: str, default: int | None, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        if default is None:
            raise ApiError(400, f"Missing required parameter {name}")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid {name}: expected an integer, got {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise ApiError(400, f"Invalid {name}: must be between {lo} and {hi}")
    return value


def _id(value: Any, what: str = "id") -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 200 or any(c.isspace() for c in value):
        raise ApiError(400, f"Invalid {what}")
    return value


def parse_uri(uri: Any, kinds: tuple[str, ...] = ("track",)) -> tuple[str, str]:
    """``spotify:<kind>:<id>`` or ``playlog:<kind>:<id>`` -> (kind, id)."""
    if not isinstance(uri, str):
        raise ApiError(400, "Invalid uri: expected a string")
    parts = uri.split(":")
    if len(parts) != 3 or parts[0] not in ("spotify", "playlog") or parts[1] not in kinds or not parts[2]:
        raise ApiError(400, f"Invalid {'/'.join(kinds)} uri: {uri[:80]!r}")
    return parts[1], _id(parts[2])


async def _json_body(request: web.Request, *, required: bool = True) -> Any:
    raw = await request.read()
    if not raw.strip():
        if required:
            raise ApiError(400, "Missing request body")
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "Error parsing JSON.") from None


async def _json_object(request: web.Request, *, required: bool = True) -> dict:
    body = await _json_body(request, required=required)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object")
    return body


def _bool(body: dict, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise ApiError(400, f"Invalid {name}: expected a boolean")
    return value


def uri(kind: str, item_id: str) -> str:
    return f"spotify:{kind}:{item_id}"


# ==================================================================================================
# the API


class PlaybackApi:
    """Route handlers over a replica, a publisher and a signer."""

    def __init__(
        self,
        settings: Any,
        replica: Replica,
        publisher: Any,
        *,
        clock: Callable[[], float] = time.time,
        ack_player_commands: bool = False,
    ):
        self.settings = settings
        self.ack_player_commands = ack_player_commands
        self._tokens: dict[str, auth.TokenCheck] = {}
        self.replica = replica
        self.publisher = publisher
        self.clock = clock
        self.signer = Signer.from_settings(settings)
        self.codec = default_codec()
        self.cdn_base = settings.cdn_base_url.rstrip("/")
        self._manifests: dict[tuple, bytes] = {}
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "playlog_api_request_seconds", "API request latency by route", ["method", "route"],
            buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
            registry=self.registry,
        )
        self.responses = Counter("playlog_api_responses", "API responses by route and status",
                                 ["method", "route", "status"], registry=self.registry)
        self.produced = Counter("playlog_api_events_produced", "Events the API produced", ["type"],
                                registry=self.registry)
        self.lost = Counter("playlog_api_events_lost", "Player commands the broker finally refused",
                            registry=self.registry)
        gauge = Gauge("playlog_api_replica_documents", "Documents in the API's read replicas", ["view"],
                      registry=self.registry)
        for name in ("tracks", "artists", "albums", "rights", "users", "playlists", "players", "profiles"):
            gauge.labels(name).set_function(lambda name=name: len(getattr(replica, name)))
        Gauge("playlog_api_replica_skipped", "Replica records skipped (malformed)", registry=self.registry
              ).set_function(lambda: replica.skipped)

    # -- plumbing --------------------------------------------------------------------------------
    def authorize(self, header: str | None) -> auth.TokenCheck:
        """``auth.check_authorization`` with a cache of verified tokens (the JWT signature check is most
        of the cost of a small request); a cached token is still refused from its ``exp`` on."""
        now = self.clock()
        cached = self._tokens.get(header) if header else None
        if cached is not None:
            if now < cached.expires_at:  # type: ignore[operator]
                return cached
            del self._tokens[header]  # type: ignore[arg-type]
        check = auth.check_authorization(header, self.settings.token_secret, now=now)
        if check.ok and header and check.expires_at is not None:
            if len(self._tokens) >= 100_000:
                self._tokens.clear()
            self._tokens[header] = check
        return check

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _event(self, etype: str, **fields: Any) -> dict:
        return {"type": etype, "event_id": f"api-{uuid.uuid4().hex}", "occurred_at": self.now_ms(), **fields}

    async def _produce(self, events: list[dict], *, wait: bool = True) -> None:
        try:
            if wait:
                await self.publisher.publish(events)
            else:
                self.publisher.publish_nowait(events, self._lost)
        except PublishError as exc:
            raise ApiError(503, f"Could not record the change, try again: {exc}") from None
        for e in events:
            self.produced.labels(e["type"]).inc()
            self.replica.add_pending(e)

    def _lost(self, event: dict, reason: str) -> None:
        """A command produced without waiting was finally not delivered: count it, drop its overlay."""
        log.error("event %s (%s) was not delivered: %s", event["event_id"], event["type"], reason)
        self.lost.inc()
        self.replica.drop_pending(event)

    def _base(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    @staticmethod
    def _user_id(request: web.Request) -> str:
        return request[USER_KEY]

    def _user(self, request: web.Request) -> dict:
        """The token user's document; 403 when the users view does not know them (or lacks a plan)."""
        doc = self.replica.users.get(self._user_id(request))
        if doc is None or not doc.get("country") or not doc.get("product"):
            raise ApiError(403, "user is not registered (no country/product in the users view)")
        return doc

    def _market(self, request: web.Request) -> str | None:
        market = request.query.get("market")
        if market and market != "from_token":
            if len(market) != 2 or not market.isalpha() or not market.isupper():
                raise ApiError(400, "Invalid market code")
            return market
        doc = self.replica.users.get(self._user_id(request))
        return doc.get("country") if doc else None

    # -- objects ---------------------------------------------------------------------------------
    def artist_ref(self, base: str, artist_id: str) -> dict:
        doc = self.replica.artists.get(artist_id) or {}
        return {"id": artist_id, "name": doc.get("name"), "type": "artist", "uri": uri("artist", artist_id),
                "href": f"{base}/v1/artists/{artist_id}"}

    def album_object(self, base: str, album_id: str | None) -> dict | None:
        if not album_id:
            return None
        doc = self.replica.albums.get(album_id) or {}
        artwork = doc.get("artwork_uri")
        return {
            "id": album_id, "name": doc.get("title"), "type": "album", "album_type": "album",
            "uri": uri("album", album_id), "href": f"{base}/v1/albums/{album_id}",
            "release_date": doc.get("release_date"), "release_date_precision": "day",
            "label": doc.get("label"),
            "artists": [self.artist_ref(base, a) for a in doc.get("artist_ids") or []],
            "images": [{"url": artwork, "height": None, "width": None}] if artwork else [],
        }

    def track_object(self, base: str, canon: str, market: str | None, now_ms: int,
                     linked_from: str | None = None) -> dict:
        r = self.replica
        doc = r.track_doc(canon) or {"track_id": canon}
        obj = {
            "id": canon, "type": "track", "uri": uri("track", canon), "href": f"{base}/v1/tracks/{canon}",
            "name": doc.get("title"),
            "artists": [self.artist_ref(base, a) for a in doc.get("artist_ids") or []],
            "album": self.album_object(base, doc.get("album_id")),
            "duration_ms": doc.get("duration_ms"), "explicit": bool(doc.get("explicit")),
            "external_ids": {"isrc": doc.get("isrc")} if doc.get("isrc") else {},
            "popularity": popularity_of(r.streams.get(canon, 0)),
            "genres": list(doc.get("genres") or []),
            "is_local": False,
            "has_audio": bool(doc.get("ladder")),
        }
        if market:
            ok, reason = r.playability(canon, market, now_ms)
            obj["is_playable"] = ok
            if not ok:
                obj["restrictions"] = {"reason": "market", "message": reason}
        if linked_from and linked_from != canon:
            obj["linked_from"] = {"id": linked_from, "type": "track", "uri": uri("track", linked_from),
                                  "href": f"{base}/v1/tracks/{linked_from}"}
        return obj

    def _canon(self, track_id: str) -> str:
        canon = self.replica.canonical_id(track_id)
        doc = self.replica.tracks.get(canon) if canon else None
        if canon is None or doc is None or not doc.get("ingested"):
            raise ApiError(404, "Non existing id: track not found")
        return canon

    # -- search and tracks -----------------------------------------------------------------------
    async def search(self, request: web.Request) -> web.Response:
        q = request.query.get("q", "").strip()
        if not q:
            raise ApiError(400, "No search query")
        raw_types = request.query.get("type", "track,artist,album")
        types = [t.strip() for t in raw_types.split(",") if t.strip()]
        if not types or any(t not in SEARCH_TYPES for t in types):
            raise ApiError(400, "Bad search type field: use track, artist and/or album")
        limit = _int_param(request, "limit", 20, 0, 50)
        offset = _int_param(request, "offset", 0, 0, 1000)
        market = self._market(request)
        index = self.replica.search
        if index is None:
            raise ApiError(503, "search is not enabled on this replica")
        base, now_ms = self._base(request), self.now_ms()
        out: dict[str, Any] = {}
        for kind in dict.fromkeys(types):
            hits = index.search(q, kind, limit=limit, offset=offset)
            with self.replica.lock:
                if kind == "track":
                    items = [self.track_object(base, t, market, now_ms) for t in hits.ids]
                elif kind == "artist":
                    items = [self._artist_object(base, a) for a in hits.ids]
                else:
                    items = [self.album_object(base, a) for a in hits.ids]
            href = f"{base}/v1/search?q={q}&type={kind}&offset={offset}&limit={limit}"
            out[kind + "s"] = {
                "href": href, "items": items, "limit": limit, "offset": offset, "total": hits.total,
                "next": (f"{base}/v1/search?q={q}&type={kind}&offset={offset + limit}&limit={limit}"
                         if limit and offset + limit < min(hits.total, 1000) else None),
                "previous": (f"{base}/v1/search?q={q}&type={kind}&offset={max(0, offset - limit)}&limit={limit}"
                             if offset > 0 else None),
            }
        return json_response(out)

    def _artist_object(self, base: str, artist_id: str) -> dict:
        doc = self.replica.artists.get(artist_id) or {}
        return {**self.artist_ref(base, artist_id), "genres": list(doc.get("genres") or []),
                "popularity": 0, "images": []}

    async def track(self, request: web.Request) -> web.Response:
        track_id = _id(request.match_info["id"])
        market = self._market(request)
        canon = self._canon(track_id)
        with self.replica.lock:
            obj = self.track_object(self._base(request), canon, market, self.now_ms(), linked_from=track_id)
        return json_response(obj)

    # -- player ----------------------------------------------------------------------------------
    def _devices(self, user: dict) -> dict[str, dict]:
        return {d["device_id"]: d for d in user.get("devices") or []}

    def _device(self, request: web.Request, user: dict, state: dict | None, body: dict | None = None) -> str:
        devices = self._devices(user)
        device_id = request.query.get("device_id") or (body or {}).get("device_id")
        if device_id is not None:
            if not isinstance(device_id, str) or device_id not in devices:
                raise ApiError(404, "Device not found")
            return device_id
        if state and state.get("active_device"):
            return state["active_device"]
        if devices:
            return sorted(devices)[0]
        raise ApiError(404, "No active device found")

    async def _player_command(self, user_id: str, event: dict) -> None:
        state = self.replica.player_state(user_id)
        _, outputs = player_fold.evolve(state, event)
        for out in outputs:
            if out.get("kind") == "dead_letter":
                raise ApiError(403, f"Player command failed: {out['reason']}")
        await self._produce([event], wait=self.ack_player_commands)

    def _check_playable(self, canon: str, user: dict) -> None:
        ok, reason = self.replica.playability(canon, user["country"], self.now_ms())
        if not ok:
            raise ApiError(403, f"Cannot play {canon}: {reason}", reason=reason)

    async def play(self, request: web.Request) -> web.Response:
        user_id = self._user_id(request)
        user = self._user(request)
        body = await _json_object(request, required=False)
        state = self.replica.player_state(user_id)
        device_id = self._device(request, user, state, body)
        position_ms = body.get("position_ms", 0)
        if not isinstance(position_ms, int) or isinstance(position_ms, bool) or position_ms < 0:
            raise ApiError(400, "Invalid position_ms: expected a non-negative integer")
        context_uri = None
        if "uris" in body:
            uris = body["uris"]
            if not isinstance(uris, list) or not 0 < len(uris) <= 100:
                raise ApiError(400, "Invalid uris: expected 1 to 100 track uris")
            raw_ids = [parse_uri(u)[1] for u in uris]
        elif "context_uri" in body:
            context_uri = body["context_uri"]
            kind, ctx_id = parse_uri(context_uri, ("album", "playlist", "artist"))
            raw_ids = self._context_tracks(kind, ctx_id)
            if not raw_ids:
                raise ApiError(404, f"Context not found or empty: {context_uri}")
        else:
            # no body: resume on the device
            await self._player_command(user_id, self._event("player.resumed", user_id=user_id, device_id=device_id))
            return web.Response(status=204)
        track_ids = []
        for t in raw_ids:
            canon = self.replica.canonical_id(t)
            track_ids.append(canon if canon is not None else t)
        offset = 0
        off = body.get("offset")
        if off is not None:
            if not isinstance(off, dict):
                raise ApiError(400, "Invalid offset: expected {\"position\": n} or {\"uri\": ...}")
            if "position" in off:
                offset = off["position"]
                if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset < len(track_ids):
                    raise ApiError(400, "Invalid offset position")
            elif "uri" in off:
                t = parse_uri(off["uri"])[1]
                t = self.replica.canonical_id(t) or t
                if t not in track_ids:
                    raise ApiError(400, "Invalid offset uri: not in the context")
                offset = track_ids.index(t)
            else:
                raise ApiError(400, "Invalid offset: expected position or uri")
        self._check_playable(track_ids[offset], user)
        event = self._event("player.play_requested", user_id=user_id, device_id=device_id, track_ids=track_ids,
                            context_uri=context_uri, offset=offset, position_ms=position_ms)
        await self._player_command(user_id, event)
        return web.Response(status=204)

    def _context_tracks(self, kind: str, ctx_id: str) -> list[str]:
        with self.replica.lock:
            if kind == "album":
                return self.replica.album_tracks(ctx_id)
            if kind == "artist":
                return sorted({c for t in self.replica.tracks_by_artist(ctx_id)
                               if (c := self.replica.canonical_id(t))})
            state = self.replica.playlist_state(ctx_id)
            return playlists_fold.track_ids(state) if state else []

    def _device_object(self, user: dict | None, device_id: str, state: dict) -> dict:
        dev = self._devices(user or {}).get(device_id, {})
        return {"id": device_id, "is_active": True, "is_private_session": False, "is_restricted": False,
                "name": dev.get("name"), "type": dev.get("device_type"), "supports_volume": True,
                "volume_percent": state["volumes"].get(device_id)}

    async def get_player(self, request: web.Request) -> web.Response:
        user_id = self._user_id(request)
        state = self.replica.player_state(user_id)
        if state is None or state.get("item") is None or state.get("active_device") is None:
            return web.Response(status=204)
        user = self.replica.users.get(user_id)
        now_ms = self.now_ms()
        market = (user or {}).get("country")
        with self.replica.lock:
            canon = self.replica.canonical_id(state["item"]) or state["item"]
            doc = self.replica.track_doc(canon)
            item = self.track_object(self._base(request), canon, market, now_ms) if doc else None
        context = None
        if state.get("context_uri"):
            context = {"uri": state["context_uri"], "type": state["context_uri"].split(":")[1]}
        return json_response({
            "device": self._device_object(user, state["active_device"], state),
            "repeat_state": "off", "shuffle_state": False, "context": context, "timestamp": now_ms,
            "progress_ms": player_fold.progress_ms(state, now_ms, (doc or {}).get("duration_ms")),
            "is_playing": state["playing"], "item": item, "currently_playing_type": "track",
            "queue_position": state["index"], "queue": [uri("track", t) for t in player_fold.upcoming(state)],
            "actions": {"disallows": {}},
        })

    async def transfer(self, request: web.Request) -> web.Response:
        user_id = self._user_id(request)
        user = self._user(request)
        body = await _json_object(request)
        ids = body.get("device_ids")
        if not isinstance(ids, list) or len(ids) != 1 or not isinstance(ids[0], str):
            raise ApiError(400, "device_ids must hold exactly one device id")
        if ids[0] not in self._devices(user):
            raise ApiError(404, "Device not found")
        play = _bool(body, "play", False)
        await self._player_command(user_id, self._event("player.transferred", user_id=user_id,
                                                        device_id=ids[0], play=play))
        return web.Response(status=204)

    async def pause(self, request: web.Request) -> web.Response:
        user_id = self._user_id(request)
        user = self._user(request)
        state = self.replica.player_state(user_id)
        device_id = self._device(request, user, state)
        position = player_fold.progress_ms(state, self.now_ms()) if state and state.get("item") else 0
        await self._player_command(user_id, self._event("player.paused", user_id=user_id, device_id=device_id,
                                                        position_ms=position))
        return web.Response(status=204)

    async def seek(self, request: web.Request) -> web.Response:
        user_id = self._user_id(request)
        user = self._user(request)
        position = _int_param(request, "position_ms", None, 0, 2**31 - 1)
        state = self.replica.player_state(user_id)
        device_id = self._device(request, user, state)
        await self._player_command(user_id, self._event("player.seeked", user_id=user_id, device_id=device_id,
                                                        position_ms=position))
        return web.Response(status=204)

    async def _skip(self, request: web.Request, direction: str) -> web.Response:
        user_id = self._user_id(request)
        user = self._user(request)
        state = self.replica.player_state(user_id)
        device_id = self._device(request, user, state)
        await self._player_command(user_id, self._event("player.skipped_to", user_id=user_id,
                                                        device_id=device_id, direction=direction))
        return web.Response(status=204)

    async def next(self, request: web.Request) -> web.Response:
        return await self._skip(request, "next")

    async def previous(self, request: web.Request) -> web.Response:
        return await self._skip(request, "previous")

    async def queue(self, request: web.Request) -> web.Response:
        user_id = self._user_id(request)
        user = self._user(request)
        raw = request.query.get("uri")
        if not raw:
            raise ApiError(400, "Missing required parameter uri")
        track_id = parse_uri(raw)[1]
        canon = self.replica.canonical_id(track_id)
        if canon is None:
            raise ApiError(404, "Non existing id: track not found")
        self._check_playable(canon, user)
        await self._player_command(user_id, self._event("player.queued", user_id=user_id, track_id=canon))
        return web.Response(status=204)

    async def volume(self, request: web.Request) -> web.Response:
        user_id = self._user_id(request)
        user = self._user(request)
        volume = _int_param(request, "volume_percent", None, 0, 100)
        state = self.replica.player_state(user_id)
        device_id = self._device(request, user, state)
        await self._player_command(user_id, self._event("player.volume_set", user_id=user_id,
                                                        device_id=device_id, volume_percent=volume))
        return web.Response(status=204)

    # -- manifest --------------------------------------------------------------------------------
    @staticmethod
    def gain_db(loudness_lufs: float, true_peak_dbtp: float) -> float:
        """Loudness-normalization gain to -14 LUFS; a boost never pushes the true peak above -1 dBTP."""
        gain = TARGET_LUFS - loudness_lufs
        if gain > 0:
            gain = max(0.0, min(gain, PEAK_CEILING_DBTP - true_peak_dbtp))
        return round(gain, 2)

    async def manifest(self, request: web.Request) -> web.Response:
        track_id = _id(request.match_info["track_id"])
        user = self._user(request)
        canon = self.replica.canonical_id(track_id)
        if canon is None:
            raise ApiError(403, f"Cannot play {track_id}: unknown track", reason="unknown track")
        self._check_playable(canon, user)
        doc = self.replica.track_doc(canon) or {}
        ladder = doc.get("ladder") or []
        if not ladder:
            raise ApiError(404, "No audio encoded for this track yet")
        product = user["product"]
        now = self.clock()
        start = int(now) // EXP_GRID_S * EXP_GRID_S
        key = (track_id, canon, product, start, tuple(r["file_id"] for r in ladder))
        body = self._manifests.get(key)
        if body is None:
            body = orjson.dumps(self._build_manifest(track_id, canon, product, ladder, start))
            if len(self._manifests) > 20_000:
                self._manifests.clear()
            self._manifests[key] = body
        return web.Response(body=body, content_type="application/json")

    def _segment_urls(self, file_id: str, count: int, exp: int) -> list[str]:
        """The same URLs as ``Signer.sign_segment_url`` (``exp`` fixed), without urlencode per URL."""
        kid = self.signer.signing_kid
        prefix = f"{self.cdn_base}/audio/{quote(file_id, safe='')}/"
        tail = f"?exp={exp}&kid={quote_plus(kid)}&sig="
        out = []
        for k in range(count):
            sig = self.signer.sign_path(segment_path(file_id, k), exp)["sig"]
            out.append(f"{prefix}{k}{tail}{sig}")
        return out

    def _build_manifest(self, track_id: str, canon: str, product: str, ladder: list[dict], start: int) -> dict:
        allowed = [r for r in ladder if product == "premium" or r["bitrate_kbps"] <= FREE_MAX_KBPS]
        rungs = []
        for r in sorted(allowed, key=lambda r: (r["bitrate_kbps"], r["codec"], r["file_id"])):
            rungs.append({
                "file_id": r["file_id"], "codec": r["codec"], "container": r["container"],
                "bitrate_kbps": r["bitrate_kbps"], "sample_rate_hz": r["sample_rate_hz"],
                "segment_ms": r["segment_ms"], "segment_count": r["segment_count"], "byte_size": r["byte_size"],
                "loudness_lufs": r["loudness_lufs"], "true_peak_dbtp": r["true_peak_dbtp"],
                "gain_db": self.gain_db(r["loudness_lufs"], r["true_peak_dbtp"]),
                "segments": self._segment_urls(r["file_id"], r["segment_count"], start + URL_TTL_S),
            })
        exp = start + URL_TTL_S
        out = {"track_id": canon, "uri": uri("track", canon), "product": product, "target_lufs": TARGET_LUFS,
               "expires_at": exp, "expires_at_iso": format_ts(exp * 1000), "rungs": rungs}
        if track_id != canon:
            out["linked_from"] = {"id": track_id, "uri": uri("track", track_id)}
        return out

    # -- client events ---------------------------------------------------------------------------
    async def events(self, request: web.Request) -> web.Response:
        user_id = self._user_id(request)
        body = await _json_body(request)
        items = body.get("events") if isinstance(body, dict) else body
        if not isinstance(items, list) or not items:
            raise ApiError(400, 'Expected {"events": [...]} (or a JSON array) with at least one event')
        if len(items) > MAX_EVENTS:
            raise ApiError(400, f"At most {MAX_EVENTS} events per batch")
        good: list[dict] = []
        rejected: list[dict] = []
        for i, obj in enumerate(items):
            try:
                event = self.codec.from_json(obj)
                if event["type"] not in PLAY_TYPES:
                    raise EventError(f"{event['type']} is not a client listening event "
                                     f"(expected one of {', '.join(sorted(PLAY_TYPES))})")
                if event["user_id"] != user_id:
                    raise EventError("user_id does not match the access token")
            except EventError as exc:
                rejected.append({"index": i, "event_id": obj.get("event_id") if isinstance(obj, dict) else None,
                                 "reason": str(exc)})
                continue
            good.append(event)
        if good:
            await self._produce(good)
        if rejected:
            return json_response({
                "error": {"status": 400, "message": f"{len(rejected)} of {len(items)} events rejected; "
                                                    f"the {len(good)} valid ones were recorded"},
                "accepted": len(good), "rejected": rejected,
            }, 400)
        return json_response({"accepted": len(good)}, 202)

    # -- home ------------------------------------------------------------------------------------
    async def home(self, request: web.Request) -> web.Response:
        user_id = self._user_id(request)
        user = self._user(request)
        limit = _int_param(request, "limit", 10, 1, 50)
        country, now_ms = user["country"], self.now_ms()
        base = self._base(request)
        with self.replica.lock:
            shelves = home_fold.home_shelves(
                self.replica.profiles.get(user_id), self.replica, self.replica.is_playable,
                self.replica.popularity.get(country, {}), self.replica.cooccurrence, country, now_ms,
                shelf_size=limit,
            )
            out = []
            for s in shelves:
                out.append({**s, "items": [self.track_object(base, t, country, now_ms) for t in s["track_ids"]]})
        return json_response({"country": country, "shelves": out})

    # -- playlists -------------------------------------------------------------------------------
    def playlist_object(self, base: str, state: dict) -> dict:
        pid = state["playlist_id"]
        now_ms = self.now_ms()
        with self.replica.lock:
            items = []
            for e in state["entries"]:
                canon = self.replica.canonical_id(e["track_id"]) or e["track_id"]
                track = (self.track_object(base, canon, None, now_ms) if canon in self.replica.tracks
                         else {"id": e["track_id"], "type": "track", "uri": uri("track", e["track_id"])})
                items.append({"added_at": format_ts(e["added_at"]), "added_by": {"id": e["added_by"], "type": "user"},
                              "is_local": False, "track": track})
        return {
            "id": pid, "type": "playlist", "uri": uri("playlist", pid), "href": f"{base}/v1/playlists/{pid}",
            "name": state["name"], "public": state["public"], "collaborative": state["collaborative"],
            "collaborators": list(state.get("collaborators") or []),
            "owner": {"id": state["owner_id"], "type": "user", "uri": uri("user", state["owner_id"])},
            "snapshot_id": state["snapshot_id"], "description": None, "images": [],
            "tracks": {"href": f"{base}/v1/playlists/{pid}/tracks", "items": items, "limit": len(items),
                       "offset": 0, "total": len(items), "next": None, "previous": None},
        }

    async def create_playlist(self, request: web.Request) -> web.Response:
        user_id = self._user_id(request)
        owner = _id(request.match_info["user_id"], "user id")
        if owner != user_id:
            raise ApiError(403, "You cannot create a playlist for another user")
        body = await _json_object(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 300:
            raise ApiError(400, "Missing or invalid playlist name")
        public, collaborative = _bool(body, "public", True), _bool(body, "collaborative", False)
        if public and collaborative:
            raise ApiError(400, "A collaborative playlist cannot be public")
        pid = new_id()
        event = self._event("playlist.created", playlist_id=pid, owner_id=user_id, name=name,
                            collaborative=collaborative, public=public)
        await self._produce([event])
        state = self.replica.playlist_state(pid)
        return json_response(self.playlist_object(self._base(request), state), 201)

    def _playlist(self, request: web.Request) -> dict:
        state = self.replica.playlist_state(_id(request.match_info["id"]))
        if state is None:
            raise ApiError(404, "Playlist not found")
        return state

    async def get_playlist(self, request: web.Request) -> web.Response:
        return json_response(self.playlist_object(self._base(request), self._playlist(request)))

    async def _playlist_edit(self, request: web.Request, state: dict, event: dict, status: int) -> web.Response:
        _, outputs = playlists_fold.evolve(state, event)
        for out in outputs:
            if out.get("kind") == "dead_letter":
                reason = out["reason"]
                code = 403 if "may not edit" in reason or "not the owner" in reason else 400
                raise ApiError(code, reason)
        await self._produce([event])
        after = self.replica.playlist_state(state["playlist_id"])
        return json_response({"snapshot_id": after["snapshot_id"]}, status)

    @staticmethod
    def _check_snapshot(body: dict, state: dict) -> None:
        snap = body.get("snapshot_id")
        if snap is not None and snap != state["snapshot_id"]:
            raise ApiError(409, "snapshot_id is not the playlist's current snapshot")

    def _track_ids(self, uris: Any) -> list[str]:
        if not isinstance(uris, list) or not 0 < len(uris) <= 100:
            raise ApiError(400, "Invalid uris: expected 1 to 100 track uris")
        out = []
        for u in uris:
            t = parse_uri(u)[1]
            canon = self.replica.canonical_id(t)
            if canon is None:
                raise ApiError(400, f"Unknown track: {u}")
            out.append(canon)
        return out

    async def add_tracks(self, request: web.Request) -> web.Response:
        user_id = self._user_id(request)
        state = self._playlist(request)
        body = await _json_object(request, required=False)
        uris = body.get("uris")
        if uris is None and request.query.get("uris"):
            uris = request.query["uris"].split(",")
        position = body.get("position")
        if position is None and request.query.get("position"):
            position = _int_param(request, "position", None, 0, 10**6)
        if position is not None and (not isinstance(position, int) or isinstance(position, bool) or position < 0):
            raise ApiError(400, "Invalid position")
        self._check_snapshot(body, state)
        event = self._event("playlist.tracks_added", playlist_id=state["playlist_id"], user_id=user_id,
                            track_ids=self._track_ids(uris), position=position)
        return await self._playlist_edit(request, state, event, 201)

    async def remove_tracks(self, request: web.Request) -> web.Response:
        user_id = self._user_id(request)
        state = self._playlist(request)
        body = await _json_object(request)
        tracks = body.get("tracks")
        if not isinstance(tracks, list) or not 0 < len(tracks) <= 100 or not all(isinstance(t, dict) for t in tracks):
            raise ApiError(400, 'Expected "tracks": [{"uri": ...}, ...] (1 to 100)')
        ids = [parse_uri(t.get("uri"))[1] for t in tracks]
        ids = [self.replica.canonical_id(t) or t for t in ids]
        self._check_snapshot(body, state)
        event = self._event("playlist.tracks_removed", playlist_id=state["playlist_id"], user_id=user_id,
                            track_ids=ids)
        return await self._playlist_edit(request, state, event, 200)

    async def reorder_tracks(self, request: web.Request) -> web.Response:
        user_id = self._user_id(request)
        state = self._playlist(request)
        body = await _json_object(request)
        self._check_snapshot(body, state)
        pid = state["playlist_id"]
        if "uris" in body:  # replace: remove what is there, add the new list (two events, one key: in order)
            track_ids = self._track_ids(body["uris"])
            current = list(dict.fromkeys(playlists_fold.track_ids(state)))
            if not playlists_fold.can_edit_tracks(state, user_id):
                raise ApiError(403, f"user {user_id!r} may not edit the tracks of playlist {pid!r}")
            events = []
            if current:
                events.append(self._event("playlist.tracks_removed", playlist_id=pid, user_id=user_id,
                                          track_ids=current))
            events.append(self._event("playlist.tracks_added", playlist_id=pid, user_id=user_id,
                                      track_ids=track_ids, position=None))
            await self._produce(events)
            return json_response({"snapshot_id": self.replica.playlist_state(pid)["snapshot_id"]}, 200)
        fields = {}
        for name, default in (("range_start", None), ("insert_before", None), ("range_length", 1)):
            value = body.get(name, default)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ApiError(400, f"Invalid or missing {name}")
            fields[name] = value
        event = self._event("playlist.tracks_moved", playlist_id=pid, user_id=user_id, **fields)
        return await self._playlist_edit(request, state, event, 200)

    # -- operational -----------------------------------------------------------------------------
    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def healthz(self, request: web.Request) -> web.Response:
        r = self.replica
        body = {"ready": r.ready, "error": r.last_error, **r.stats()}
        return json_response(body, 200 if r.ready else 503)

    async def openapi(self, request: web.Request) -> web.Response:
        from playback.openapi import spec

        return json_response(spec(self._base(request)))


# ==================================================================================================
# middleware and the application


def _route_name(request: web.Request) -> str:
    info = request.match_info
    route = info.route if info is not None else None
    if route is None or route.resource is None:
        return "unmatched"
    return route.resource.canonical


API_KEY = web.AppKey("api", PlaybackApi)


def build_app(api: PlaybackApi) -> web.Application:

    @web.middleware
    async def middleware(request: web.Request, handler: Callable) -> web.StreamResponse:
        began = time.perf_counter()
        route = _route_name(request)
        try:
            if request.path.startswith("/v1/"):
                check = api.authorize(request.headers.get("Authorization"))
                if not check.ok:
                    raise ApiError(401, check.reason)
                request[USER_KEY] = check.user_id
            if request.content_length is not None and request.content_length > MAX_BODY:
                raise ApiError(413, "Request body too large")
            response = await handler(request)
        except ApiError as exc:
            response = error_response(exc.status, exc.message, **exc.extra)
        except web.HTTPException as exc:
            message = {404: "Service not found", 405: "Method not allowed"}.get(exc.status, exc.reason)
            response = error_response(exc.status, message)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = error_response(500, "Internal server error")
        api.latency.labels(request.method, route).observe(time.perf_counter() - began)
        api.responses.labels(request.method, route, str(response.status)).inc()
        return response

    app = web.Application(middlewares=[middleware], client_max_size=MAX_BODY)
    app[API_KEY] = api
    r = app.router
    r.add_get("/v1/search", api.search, allow_head=False)
    r.add_get("/v1/tracks/{id}", api.track, allow_head=False)
    r.add_put("/v1/me/player/play", api.play)
    r.add_get("/v1/me/player", api.get_player, allow_head=False)
    r.add_put("/v1/me/player", api.transfer)
    r.add_put("/v1/me/player/pause", api.pause)
    r.add_put("/v1/me/player/seek", api.seek)
    r.add_post("/v1/me/player/next", api.next)
    r.add_post("/v1/me/player/previous", api.previous)
    r.add_post("/v1/me/player/queue", api.queue)
    r.add_put("/v1/me/player/volume", api.volume)
    r.add_get("/v1/playback/{track_id}/manifest", api.manifest, allow_head=False)
    r.add_post("/v1/events", api.events)
    r.add_get("/v1/views/home", api.home, allow_head=False)
    r.add_post("/v1/users/{user_id}/playlists", api.create_playlist)
    r.add_get("/v1/playlists/{id}", api.get_playlist, allow_head=False)
    r.add_post("/v1/playlists/{id}/tracks", api.add_tracks)
    r.add_delete("/v1/playlists/{id}/tracks", api.remove_tracks)
    r.add_put("/v1/playlists/{id}/tracks", api.reorder_tracks)
    r.add_get("/openapi.json", api.openapi, allow_head=False)
    r.add_get("/metrics", api.metrics, allow_head=False)
    r.add_get("/healthz", api.healthz, allow_head=False)
    return app


def run(settings: Any, host: str, port: int, *, catch_up_timeout: float = 120.0) -> None:
    """``playlog api``: start the replica consumer and the producer, serve until Ctrl-C / SIGTERM."""
    replica = Replica()
    replica.start(settings)
    publisher = KafkaPublisher(settings)
    api = PlaybackApi(settings, replica, publisher)
    app = build_app(api)

    async def on_startup(app: web.Application) -> None:
        async def catch_up() -> None:
            ok = await asyncio.to_thread(replica.wait_caught_up, catch_up_timeout)
            log.info("replica %s: %s", "caught up" if ok else "not caught up yet", replica.stats())
            while not ok:
                ok = await asyncio.to_thread(replica.wait_caught_up, catch_up_timeout)
        app["catch_up"] = asyncio.get_running_loop().create_task(catch_up())

    async def on_cleanup(app: web.Application) -> None:
        app["catch_up"].cancel()
        publisher.close()
        replica.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    web.run_app(app, host=host, port=port, print=None, access_log=None, handle_signals=True)
