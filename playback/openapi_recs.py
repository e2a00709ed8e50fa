"""OpenAPI fragment of the recommender routes (:mod:`playback.routes.home`, :mod:`playback.routes.recs`):
:data:`PATHS`, path -> {method: operation}, merged into ``playback/openapi.py``'s paths (which adds the
503 answer every ``/v1`` route has). Self-contained: refers to the shared ``Track`` and ``Error`` schemas
by ``$ref`` only."""

from __future__ import annotations

from typing import Any

_JSON = "application/json"
_STR = {"type": "string"}
_INT = {"type": "integer"}
_TRACK = {"$ref": "#/components/schemas/Track"}
_ERRORS = {"400": "Bad request (invalid parameter)", "401": "Missing, bad or expired access token",
           "403": "Forbidden (user not registered)", "404": "Not found (unknown seed)"}


def _resp(description: str, schema: dict | None = None) -> dict:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {_JSON: {"schema": schema}}
    return out


def _op(op_id: str, summary: str, ok: dict, params: list[dict], errors: tuple[str, ...]) -> dict:
    responses = {"200": _resp("OK", ok)}
    responses.update({c: _resp(_ERRORS[c], {"$ref": "#/components/schemas/Error"}) for c in errors})
    return {"operationId": op_id, "summary": summary, "parameters": params, "responses": responses}


def _q(name: str, schema: dict, required: bool = False, description: str = "") -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def _obj(required: dict[str, Any]) -> dict:
    return {"type": "object", "required": list(required), "properties": required}


SHELF = _obj({
    "id": _STR, "title": _STR,
    "kind": {"type": "string", "enum": ["discover-weekly", "daily-mix", "because-you-listened", "for-you",
                                        "popular", "genre-picks", "radio", "shelf"]},
    "context_uri": {"type": "string", "pattern": "^spotify:playlist:[0-9A-Za-z]+$",
                    "description": "Play the shelf with PUT /v1/me/player/play {context_uri}; resolvable "
                                   "with GET /v1/playlists/{id} by its user"},
    "context": _obj({"kind": _STR, "ids": {"type": "array", "items": _STR}}),
    "total": _INT, "items": {"type": "array", "items": _TRACK},
})
HOME = _obj({"country": _STR, "shelves": {"type": "array", "items": SHELF}})
SEED = _obj({"id": _STR, "type": {"type": "string", "enum": ["TRACK", "ARTIST", "GENRE"]},
             "href": {"type": "string", "nullable": True}, "initialPoolSize": _INT, "afterFilteringSize": _INT,
             "afterRelinkingSize": _INT})
RECOMMENDATIONS = _obj({"seeds": {"type": "array", "items": SEED}, "tracks": {"type": "array", "items": _TRACK}})
_LIMIT50 = {"type": "integer", "minimum": 1, "maximum": 50}
_SEEDS = "Comma-separated public ids; 1 to 5 seeds over seed_tracks, seed_artists and seed_genres together"

PATHS: dict[str, dict[str, Any]] = {
    "/v1/views/home": {"get": _op(
        "getHome", "Personalized shelves: Discover Weekly (frozen per ISO week), Daily Mix 1..N, Because you "
        "listened to ..., picked for you; without history popular in the user's country then genre picks. "
        "Each shelf shows its first `limit` tracks and carries the context_uri to play it",
        HOME, [_q("limit", _LIMIT50, description="Tracks shown per shelf")], ("400", "401", "403"))},
    "/v1/views/radio": {"get": _op(
        "getRadio", "A station from a track or artist seed, personalized (the seed track leads)", SHELF,
        [_q("seed", {"type": "string", "pattern": "^spotify:(track|artist):[0-9A-Za-z]+$"}, True),
         _q("limit", _LIMIT50)], ("400", "401", "403", "404"))},
    "/v1/recommendations": {"get": _op(
        "getRecommendations", "Tracks from 1 to 5 seeds (Spotify's recommendations): playable in the market",
        RECOMMENDATIONS,
        [_q("seed_tracks", _STR, description=_SEEDS), _q("seed_artists", _STR, description=_SEEDS),
         _q("seed_genres", _STR, description=_SEEDS + " (genres from available-genre-seeds)"),
         _q("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
         _q("market", {"type": "string", "pattern": "^[A-Z]{2}$"})], ("400", "401", "404"))},
    "/v1/recommendations/available-genre-seeds": {"get": _op(
        "getAvailableGenreSeeds", "Genres usable as seed_genres", _obj({"genres": {"type": "array", "items": _STR}}),
        [], ("401",))},
}
