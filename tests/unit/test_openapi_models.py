"""/openapi.json from the typed models (playback/openapi_models.py): a valid OpenAPI 3.0 document, models that
accept the routes' real answers and refuse broken ones, and the fragment merge."""

from __future__ import annotations

import sys
import types
from typing import Any

import jsonschema
import pytest
from aiohttp.test_utils import TestClient
from pydantic import TypeAdapter, ValidationError
from schemathesis.specs.openapi.definitions import OPENAPI_30

from playback import openapi, openapi_models
from tests.unit.test_api_routes import World, call, catalog_events, run


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        return ({node["$ref"]} if isinstance(node.get("$ref"), str) else set()).union(*map(_refs, node.values()))
    if isinstance(node, list):
        return set().union(*map(_refs, node))
    return set()


def test_the_document_is_valid_openapi_30_and_every_reference_resolves() -> None:
    doc = openapi.spec()
    jsonschema.Draft4Validator(OPENAPI_30).validate(doc)  # the OpenAPI 3.0 schema (as schemathesis vendors it)
    names = set(doc["components"]["schemas"])
    assert {r.removeprefix("#/components/schemas/") for r in _refs(doc)} <= names
    assert {"/authorize", "/api/token"} <= set(doc["paths"])  # the OAuth fragment is merged
    assert {"OAuthToken", "OAuthError"} <= names


def test_generated_components_say_what_the_models_say() -> None:
    track = openapi.spec()["components"]["schemas"]["Track"]
    assert set(track["required"]) == {"id", "type", "uri", "href", "name", "artists", "album", "duration_ms",
                                      "explicit", "popularity"}
    assert track["properties"]["album"] == {"allOf": [{"$ref": "#/components/schemas/Album"}], "nullable": True}
    assert track["properties"]["name"] == {"type": "string", "nullable": True}
    assert track["properties"]["type"] == {"type": "string", "enum": ["track"]}
    assert track["properties"]["popularity"] == {"type": "integer", "minimum": 0, "maximum": 100}
    assert "additionalProperties" not in track  # open, as Spotify's objects
    play = openapi.spec()["components"]["schemas"]["PlayRequest"]
    assert "required" not in play and play["properties"]["uris"]["maxItems"] == 100


def test_v1_operations_document_auth_scope_rate_limit_and_catch_up() -> None:
    doc = openapi.spec()
    for path, ops in doc["paths"].items():
        if not path.startswith("/v1"):
            continue
        for method, op in ops.items():
            responses = op["responses"]
            assert {"401", "403", "429", "503"} <= set(responses), (method, path)
            assert "Retry-After" in responses["429"]["headers"] and "Retry-After" in responses["503"]["headers"]
            assert openapi.INSUFFICIENT_SCOPE in responses["403"]["description"]
            assert responses["429"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_models_accept_the_routes_answers_and_refuse_broken_ones() -> None:
    world = World()
    world.feed(catalog_events())
    answers: dict[str, Any] = {}

    async def scenario(c: TestClient) -> None:
        tok = world.token("u1")
        answers["Track"] = (await call(c, "GET", "/v1/tracks/t1b?market=DE", tok))[1]
        answers["SearchResult"] = (await call(c, "GET", "/v1/search?q=midnight&type=track,artist,album", tok))[1]
        answers["Albums"] = (await call(c, "GET", "/v1/albums?ids=al1,nope", tok))[1]
        answers["User"] = (await call(c, "GET", "/v1/me", tok))[1]
        answers["Devices"] = (await call(c, "GET", "/v1/me/player/devices", tok))[1]
        status, pl = await call(c, "POST", "/v1/me/playlists", tok, json={"name": "Mix"})
        assert status == 201
        answers["Snapshot"] = (await call(c, "POST", f"/v1/playlists/{pl['id']}/tracks", tok,
                                          json={"uris": ["spotify:track:t1"]}))[1]
        await call(c, "PUT", "/v1/me/player/play", tok, json={"uris": ["spotify:track:t1", "spotify:track:t2"]})
        world.deliver()
        answers["Playlist"] = (await call(c, "GET", f"/v1/playlists/{pl['id']}", tok))[1]
        answers["PlaybackState"] = (await call(c, "GET", "/v1/me/player", tok))[1]
        answers["CurrentlyPlaying"] = (await call(c, "GET", "/v1/me/player/currently-playing", tok))[1]
        answers["Queue"] = (await call(c, "GET", "/v1/me/player/queue", tok))[1]
        answers["Error"] = (await call(c, "GET", "/v1/tracks/nope", tok))[1]

    run(world, scenario)
    for name, body in answers.items():
        TypeAdapter(openapi_models.MODELS[name]).validate_python(body, strict=True)
    assert answers["Track"]["linked_from"]["id"] == "t1b" and answers["Albums"]["albums"][1] is None
    track = TypeAdapter(openapi_models.Track)
    with pytest.raises(ValidationError, match="uri"):
        track.validate_python({k: v for k, v in answers["Track"].items() if k != "uri"})
    with pytest.raises(ValidationError, match="popularity"):
        track.validate_python({**answers["Track"], "popularity": 101})
    with pytest.raises(ValidationError):
        TypeAdapter(openapi_models.PlaybackState).validate_python({**answers["PlaybackState"], "is_playing": "yes"}, strict=True)


def _fragment(monkeypatch: pytest.MonkeyPatch, name: str, **attrs: Any) -> None:
    module = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(module, k, v)
    monkeypatch.setitem(sys.modules, name, module)


def test_fragments_are_merged_when_present_and_conflicts_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    op = {"operationId": "setRepeat", "summary": "Repeat mode", "responses": {"204": {"description": "Done"}}}
    _fragment(monkeypatch, "playback.openapi_test_extra", PATHS={"/v1/me/player/repeat": {"put": op}},
              SCHEMAS={"RepeatState": {"type": "string", "enum": ["track", "context", "off"]}})
    monkeypatch.setattr(openapi, "FRAGMENTS", ["playback.openapi_not_there", "playback.openapi_test_extra"])
    doc = openapi.spec()
    merged = doc["paths"]["/v1/me/player/repeat"]["put"]
    assert merged["operationId"] == "setRepeat" and {"204", "401", "403", "429", "503"} <= set(merged["responses"])
    assert doc["components"]["schemas"]["RepeatState"]["enum"] == ["track", "context", "off"]
    jsonschema.Draft4Validator(OPENAPI_30).validate(doc)
    # a fragment may add a method to a path listed here, not redefine one
    _fragment(monkeypatch, "playback.openapi_test_extra", PATHS={"/v1/me/player": {"get": op}})
    with pytest.raises(ValueError, match="redefines GET /v1/me/player"):
        openapi.spec()
    _fragment(monkeypatch, "playback.openapi_test_extra", PATHS={}, SCHEMAS={"Track": {"type": "object"}})
    with pytest.raises(ValueError, match="schema Track"):
        openapi.spec()
