"""Our /v1 routes against the Spotify Web API's own OpenAPI document (the vendored sonallux subset).

Every Spotify operation we also serve is called in process (the aiohttp app over a replica fed by the real
folds, as in test_api_routes.py) with a realistic catalog, user, player and playlist; each JSON response is
validated against the response schema Spotify documents for that route and status (playback/conformance.py).
The report (one row per Spotify operation: ours? conforms? missing required fields) is written to
``$PLAYLOG_CONFORMANCE_REPORT`` (default build/conformance.md).

The differences we know of are listed in KNOWN_GAPS and asserted exactly: a fix or a regression both make
the test fail, so the list is kept true.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from playback import conformance, openapi
from tests.unit.test_api_routes import World, call, catalog_events, run

DOC = conformance.load()
REPORT = Path(os.environ.get("PLAYLOG_CONFORMANCE_REPORT", Path(__file__).resolve().parents[2] / "build"
                             / "conformance.md"))

#: (METHOD, Spotify path) -> the issues (str(Issue)) our responses have against Spotify's schema
KNOWN_GAPS: dict[tuple[str, str], set[str]] = {}

#: a call for each Spotify route we may serve: (method, path template, kwargs of the request; "id": the path's
#: id, the playlist made for the test when absent)
CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/v1/tracks/{id}", {"id": "t1", "params": {"market": "DE"}}),
    ("GET", "/v1/tracks/{id}", {"id": "t1b", "params": {"market": "US"}}),  # alias (linked_from), not playable there
    ("GET", "/v1/tracks", {"params": {"ids": "t1,t2"}}),
    ("GET", "/v1/albums/{id}", {"id": "al1"}),
    ("GET", "/v1/albums", {"params": {"ids": "al1"}}),
    ("GET", "/v1/albums/{id}/tracks", {"id": "al1", "params": {"limit": "2"}}),
    ("GET", "/v1/artists/{id}", {"id": "ar1"}),
    ("GET", "/v1/artists", {"params": {"ids": "ar1,ar2"}}),
    ("GET", "/v1/artists/{id}/albums", {"id": "ar1"}),
    ("GET", "/v1/artists/{id}/top-tracks", {"id": "ar1", "params": {"market": "DE"}}),
    ("GET", "/v1/search", {"params": {"q": "midnight", "type": "track,artist,album", "market": "DE"}}),
    ("GET", "/v1/me", {}),
    ("GET", "/v1/me/playlists", {}),
    ("GET", "/v1/users/{id}/playlists", {"id": "u1", }),
    ("GET", "/v1/playlists/{id}", {}),
    ("GET", "/v1/playlists/{id}/tracks", {}),
    ("GET", "/v1/playlists/{id}/items", {}),
    ("GET", "/v1/me/player", {}),
    ("GET", "/v1/me/player/currently-playing", {}),
    ("GET", "/v1/me/player/devices", {}),
    ("GET", "/v1/me/player/queue", {}),
    ("GET", "/v1/me/player/recently-played", {}),
    ("GET", "/v1/me/top/tracks", {}),
    ("GET", "/v1/me/top/artists", {}),
    ("GET", "/v1/recommendations", {"params": {"seed_tracks": "t1"}}),
    ("GET", "/v1/recommendations/available-genre-seeds", {}),
    ("GET", "/v1/me/following", {"params": {"type": "artist"}}),
    ("GET", "/v1/me/tracks", {}),
    ("GET", "/v1/me/following/contains", {"params": {"type": "artist", "ids": "ar1"}}),
    ("GET", "/v1/me/library/contains", {"params": {"uris": "spotify:artist:ar1"}}),
    ("GET", "/v1/playlists/{id}/followers/contains", {"params": {"ids": "u1"}}),
    # writes last: they change the player and playlist the reads above saw
    ("POST", "/v1/playlists/{id}/tracks", {"json": {"uris": ["spotify:track:t2"]}}),
    ("POST", "/v1/playlists/{id}/items", {"json": {"uris": ["spotify:track:t3"]}}),
    ("PUT", "/v1/playlists/{id}/tracks", {"json": {"range_start": 0, "insert_before": 2}}),
    ("PUT", "/v1/playlists/{id}/items", {"json": {"range_start": 1, "insert_before": 0}}),
    ("DELETE", "/v1/playlists/{id}/tracks", {"json": {"tracks": [{"uri": "spotify:track:t3"}]}}),
    ("DELETE", "/v1/playlists/{id}/items", {"json": {"items": [{"uri": "spotify:track:t2"}]}}),
    ("POST", "/v1/me/playlists", {"json": {"name": "Second"}}),
    ("POST", "/v1/users/{id}/playlists", {"id": "u1", "json": {"name": "Third", "public": False}}),
    ("PUT", "/v1/me/player/volume", {"params": {"volume_percent": "40"}}),
    ("PUT", "/v1/me/player/seek", {"params": {"position_ms": "1000"}}),
    ("PUT", "/v1/me/player/repeat", {"params": {"state": "track"}}),
    ("PUT", "/v1/me/player/shuffle", {"params": {"state": "true"}}),
    ("POST", "/v1/me/player/queue", {"params": {"uri": "spotify:track:t2"}}),
    ("POST", "/v1/me/player/next", {}),
    ("POST", "/v1/me/player/previous", {}),
    ("PUT", "/v1/me/player/pause", {}),
    ("PUT", "/v1/me/player", {"json": {"device_ids": ["d1"], "play": True}}),
    ("PUT", "/v1/me/player/play", {"json": {"uris": ["spotify:track:t2"]}}),
    ("PUT", "/v1/me/following", {"params": {"type": "artist", "ids": "ar1"}}),
    ("DELETE", "/v1/me/following", {"params": {"type": "artist", "ids": "ar1"}}),
    ("PUT", "/v1/me/library", {"params": {"uris": "spotify:artist:ar2"}}),
    ("DELETE", "/v1/me/library", {"params": {"uris": "spotify:artist:ar2"}}),
    ("PUT", "/v1/playlists/{id}/followers", {"json": {"public": True}}),
    ("DELETE", "/v1/playlists/{id}/followers", {}),
]


@pytest.fixture(scope="module")
def outcome() -> tuple[list[conformance.RouteResult], dict]:
    world = World()
    world.feed(catalog_events())
    our_paths = openapi.spec()["paths"]
    ours = {(m, conformance.normalize(p)) for p, ops in our_paths.items() for m in ops}
    calls: dict[tuple[str, str], list[tuple[int, Any]]] = {}
    unauth: dict[tuple[str, str], tuple[int, Any]] = {}

    async def scenario(c: TestClient) -> None:
        tok = world.token("u1")
        status, pl = await call(c, "POST", "/v1/me/playlists", tok, json={"name": "Road trip"})
        assert status == 201, pl
        pid = pl["id"]
        assert (await call(c, "POST", f"/v1/playlists/{pid}/tracks", tok,
                           json={"uris": ["spotify:track:t1", "spotify:track:t2"]}))[0] == 201
        assert (await call(c, "PUT", "/v1/me/player/play", tok, json={"context_uri": f"spotify:playlist:{pid}"},
                           params={"device_id": "d2"}))[0] == 204  # a context: GET /me/player renders it
        world.deliver()
        for method, template, kw in CALLS:
            key = (method.lower(), conformance.normalize(template))
            if key not in ours:
                continue
            kw = dict(kw)
            path = template.replace("{id}", kw.pop("id", pid))
            calls.setdefault(key, []).append(await call(c, method, path, tok, **kw))
            world.deliver()
            unauth.setdefault(key, await call(c, method, path, **kw))

    run(world, scenario)
    player = calls[("get", "/me/player")][0][1]
    assert player["context"]["type"] == "playlist" and player["item"]["id"] == "t1"  # the realistic case checked
    return conformance.results(DOC, our_paths, calls), unauth


def test_every_shared_route_is_exercised_and_the_report_is_written(outcome) -> None:
    rows, _ = outcome
    shared = [r for r in rows if r.ours]
    assert len(shared) >= 35  # tracks, albums, artists, search, me, playlists, player
    assert [f"{r.method.upper()} {r.path}" for r in shared if not r.checked] == []
    report = conformance.markdown(DOC, rows)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(report)
    assert "| GET /tracks/{id} | yes |" in report and report.count("\n| ") == len(rows) + 1


def test_responses_conform_to_spotify_schemas_except_the_known_gaps(outcome) -> None:
    rows, _ = outcome
    found = {(r.method.upper(), r.path): {str(i) for i in r.issues} for r in rows if r.issues}
    assert found == KNOWN_GAPS


def test_unauthorized_calls_get_spotify_error_objects(outcome) -> None:
    _, unauth = outcome
    assert unauth
    for (method, path), (status, body) in unauth.items():
        spotify_path = next(p for m, p in conformance.operations(DOC) if m == method and conformance.normalize(p) == path)
        assert status == 401, (method, path)
        assert conformance.check(DOC, method, spotify_path, status, body) == [], (method, path, body)


def test_the_checker_finds_missing_fields_wrong_types_and_undocumented_statuses() -> None:
    """The checker itself, on hand-made bodies (the expectations read off Spotify's SimplifiedArtistObject
    and ErrorObject)."""
    artist = {"external_urls": {"spotify": "x"}, "href": "h", "id": "a", "name": "n", "type": "artist", "uri": "u"}
    ok = {"artists": [{**artist, "followers": {"href": None, "total": 0}, "genres": [], "images": [],
                       "popularity": 0}]}
    assert conformance.check(DOC, "get", "/artists", 200, ok) == []
    bad = {"artists": [{**ok["artists"][0], "popularity": "high"}]}
    assert [str(i) for i in conformance.check(DOC, "get", "/artists", 200, bad)] == [
        "type .artists[].popularity: 'high' is not of type 'integer'"]
    # PagingObject requires href, items, limit, next, offset, previous, total; a track's duration_ms is an integer
    page = {"href": "h", "items": [{"id": "t", "type": "track", "duration_ms": "long"}], "limit": 1, "offset": 0,
            "previous": None, "total": 1}
    assert {str(i) for i in conformance.check(DOC, "get", "/albums/{id}/tracks", 200, page)} == {
        "missing next: required field absent", "type .items[].duration_ms: 'long' is not of type 'integer'"}
    assert conformance.check(DOC, "get", "/albums/{id}/tracks", 200, {**page, "next": None,
                                                                        "items": [{"id": "t"}]}) == []
    assert [i.kind for i in conformance.check(DOC, "get", "/artists", 202, ok)] == ["status"]
    assert conformance.check(DOC, "get", "/artists", 401, {"error": {"status": 401, "message": "m"}}) == []
    assert conformance.check(DOC, "get", "/artists", 401, {"error": {"status": "401"}}) != []
    # nullable: an album's images may not be null, a track's preview_url may
    assert conformance.to_json_schema(DOC, {"type": "string", "nullable": True}) == {
        "anyOf": [{"type": "string"}, {"type": "null"}]}


def test_vendor_keeps_music_operations_and_every_component_they_reference() -> None:
    s = "#/components/schemas/"
    full = {
        "openapi": "3.0.3", "info": {"title": "Spotify", "version": "1", "description": "long"},
        "paths": {
            "/tracks/{id}": {"get": {"operationId": "get-track", "tags": ["Tracks"], "description": "dropped",
                                     "responses": {"200": {"$ref": "#/components/responses/OneTrack"}}},
                             "parameters": [{"$ref": "#/components/parameters/Unused"}]},
            "/shows/{id}": {"get": {"operationId": "get-show", "tags": ["Shows"],
                                    "responses": {"200": {"content": {"application/json": {
                                        "schema": {"$ref": s + "ShowObject"}}}}}}},
        },
        "components": {
            "responses": {"OneTrack": {"content": {"application/json": {"schema": {"$ref": s + "TrackObject"}}}}},
            "parameters": {"Unused": {"name": "x", "in": "query"}},
            "schemas": {"TrackObject": {"properties": {"album": {"$ref": s + "AlbumObject"}}},
                        "AlbumObject": {"properties": {"artists": {"items": {"$ref": s + "ArtistObject"}}}},
                        "ArtistObject": {"type": "object"}, "ShowObject": {"type": "object"}},
        },
    }
    subset = conformance.vendor(full)
    assert subset["paths"] == {"/tracks/{id}": {"get": {"operationId": "get-track", "tags": ["Tracks"],
                                                        "responses": full["paths"]["/tracks/{id}"]["get"]["responses"]}}}
    assert subset["components"] == {"responses": full["components"]["responses"],
                                    "schemas": {k: full["components"]["schemas"][k]
                                                for k in ("AlbumObject", "ArtistObject", "TrackObject")}}
