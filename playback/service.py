"""What every route of the playback API shares: its dependencies and the steps they all take.

:class:`PlaybackApi` holds the replica (reads), the publisher (writes), the URL signer, the clock and
the Prometheus metrics, and offers the common steps (bearer tokens are checked by playback/oauth/guard.py): build an
event, produce it and record it as pending on the replica (read-your-writes), look up the calling
user, the market, a canonical track, and check that a track is playable for the user. Route modules
(:mod:`playback.routes`) reach it from a request with :func:`api_of`.

Acknowledged means durable: :meth:`PlaybackApi.produce` returns only once Kafka acknowledged every
event (``acks=all``, idempotent producer; playback/publisher.py bounds the wait), so a route answers
2xx only for a change that is in the log. When the broker does not acknowledge in time, or is known
to be unreachable, the route answers 503 with ``Retry-After: WRITE_RETRY_S`` and adds nothing to the
read-your-writes overlay (the change was not acknowledged; a producer timeout that fires before the
answer makes it, in all but a lost-acknowledgement race, not written at all).
Player commands wait too (``ack_player_commands``, True by default; False, which answers before the
broker acknowledged and can lose the command, is left for load experiments only).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from playback import manifest as manifest_builder
from playback.parsing import ApiError, parse_market, user_id
from playback.publisher import PublishError
from playback.replica import Replica
from playback.signing import Signer
from schemas.codec import default_codec

log = logging.getLogger(__name__)

WRITE_RETRY_S = 5  # Retry-After of a write Kafka did not acknowledge (the publisher's health probe period is 1 s)


class PlaybackApi:
    """The API's dependencies (replica, publisher, signer, clock), metrics and shared steps."""

    gain_db = staticmethod(manifest_builder.gain_db)

    def __init__(
        self,
        settings: Any,
        replica: Replica,
        publisher: Any,
        *,
        clock: Callable[[], float] = time.time,
        ack_player_commands: bool = True,
    ):
        self.settings = settings
        self.ack_player_commands = ack_player_commands
        self.replica = replica
        self.publisher = publisher
        self.clock = clock
        self.signer = Signer.from_settings(settings)
        self.codec = default_codec()
        self.cdn_base = settings.cdn_base_url.rstrip("/")
        self.manifests: dict[tuple, bytes] = {}  # serialized manifests per (track, tier, minute, files)
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
        Gauge("playlog_api_replica_ready", "1 once the replicas reached the end offsets seen at start",
              registry=self.registry).set_function(lambda: 1.0 if replica.ready else 0.0)
        health = getattr(publisher, "health", None)
        Gauge("playlog_api_writes_ok", "1 while the broker answers (writes can be acknowledged)",
              registry=self.registry).set_function(lambda: 1.0 if health is None or health() is None else 0.0)

    # -- plumbing --------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def event(self, etype: str, **fields: Any) -> dict:
        """A new event of ``etype`` with a fresh ``event_id`` and ``occurred_at`` = now."""
        return {"type": etype, "event_id": f"api-{uuid.uuid4().hex}", "occurred_at": self.now_ms(), **fields}

    async def produce(self, events: list[dict], *, wait: bool = True) -> None:
        """Produce ``events`` (awaiting the broker's acknowledgement unless ``wait`` is False), then record
        them as pending on the replica; 503 when they cannot be recorded."""
        try:
            if wait:
                await self.publisher.publish(events)
            else:
                self.publisher.publish_nowait(events, self._lost)
        except PublishError as exc:
            raise ApiError(503, f"Could not record the change, try again: {exc}",
                           retry_after=WRITE_RETRY_S) from None
        for e in events:
            self.produced.labels(e["type"]).inc()
            self.replica.add_pending(e)

    def _lost(self, event: dict, reason: str) -> None:
        """A command produced without waiting was finally not delivered: count it, drop its overlay."""
        log.error("event %s (%s) was not delivered: %s", event["event_id"], event["type"], reason)
        self.lost.inc()
        self.replica.drop_pending(event)

    # -- lookups ---------------------------------------------------------------------------------
    def user(self, request: web.Request) -> dict:
        """The token user's document; 403 when the users view does not know them (or lacks a plan)."""
        doc = self.replica.users.get(user_id(request))
        if doc is None or not doc.get("country") or not doc.get("product"):
            raise ApiError(403, "user is not registered (no country/product in the users view)")
        return doc

    def market(self, request: web.Request) -> str | None:
        """The ``market`` parameter, else the token user's country (None for an unknown user)."""
        market = parse_market(request)
        if market is not None:
            return market
        doc = self.replica.users.get(user_id(request))
        return doc.get("country") if doc else None

    def canonical_track(self, track_id: str) -> str:
        """The canonical id of an ingested track; 404 otherwise."""
        canon = self.replica.canonical_id(track_id)
        doc = self.replica.tracks.get(canon) if canon else None
        if canon is None or doc is None or not doc.get("ingested"):
            raise ApiError(404, "Non existing id: track not found")
        return canon

    def check_playable(self, canon: str, user: dict) -> None:
        """403 with the reason when the track may not be played in the user's country now."""
        ok, reason = self.replica.playability(canon, user["country"], self.now_ms())
        if not ok:
            raise ApiError(403, f"Cannot play {canon}: {reason}", reason=reason)


API_KEY = web.AppKey("api", PlaybackApi)


def api_of(request: web.Request) -> PlaybackApi:
    """The :class:`PlaybackApi` the request's application was built with."""
    return request.app[API_KEY]
