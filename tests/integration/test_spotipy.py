"""The real ``spotipy`` 2.26 client against the playback API as real processes (broker, worker, API).

The stack is tests/integration/test_api_http.py's (synthetic catalog, users ``u-de`` with devices
``phone`` and ``speaker``); spotipy's API prefix points at our server and it sends a plain bearer token
from ``playlog token``. Every call must succeed (no ``SpotifyException``) and answer what the test's
own commands produced. Synthetic ids (``trk-0-0000000``) fail spotipy's id check, so the client uses
their public alias (playback/ids.py), computed here independently.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import spotipy

from tests.integration.test_api_http import AUDIO_TRACK, AUDIO_TRACK_ID, Stack, start_stack, stop_stack


def alias(internal: str) -> str:
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    n, out = int.from_bytes(b"\x01" + internal.encode(), "big"), ""
    while n:
        n, r = divmod(n, 62)
        out = alphabet[r] + out
    return "0z" + out


@pytest.fixture(scope="module")
def stack(kafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(kafka, tmp_path_factory.mktemp("spotipy"))
    try:
        tok = s.token("u-de")

        def ready() -> bool:
            try:
                status, body = s.api("GET", f"/v1/tracks/{AUDIO_TRACK}", tok)
            except OSError:
                return False
            return status == 200 and body.get("is_playable") is True

        s.wait_for("the catalog through the API", ready, timeout=180)
        yield s
    finally:
        stop_stack(s)


@pytest.fixture(scope="module")
def sp(stack: Stack) -> spotipy.Spotify:
    client = spotipy.Spotify(auth=stack.token("u-de"), requests_timeout=20, retries=0)
    client.prefix = f"http://127.0.0.1:{stack.api_port}/v1/"  # spotipy 2.26 has no prefix argument
    return client


def test_alias_matches_the_one_the_http_test_expects() -> None:
    assert alias(AUDIO_TRACK) == AUDIO_TRACK_ID


def test_catalog_track_album_artist_search(sp: spotipy.Spotify) -> None:
    track = sp.track(AUDIO_TRACK_ID)
    assert track["id"] == AUDIO_TRACK_ID and track["uri"] == f"spotify:track:{AUDIO_TRACK_ID}"
    assert track["disc_number"] == 1 and track["track_number"] >= 1 and track["external_urls"]["spotify"]
    found = sp.search(q=track["name"], type="track", limit=10)
    assert AUDIO_TRACK_ID in [t["id"] for t in found["tracks"]["items"]]
    album = sp.album(track["album"]["id"])
    assert album["id"] == track["album"]["id"] and AUDIO_TRACK_ID in [t["id"] for t in album["tracks"]["items"]]
    assert album["total_tracks"] == len(sp.album_tracks(album["id"], limit=50)["items"])
    artist_id = track["artists"][0]["id"]
    artist = sp.artist(artist_id)
    assert artist["name"] == track["artists"][0]["name"]
    top = sp.artist_top_tracks(artist_id)["tracks"]
    assert top and all(artist_id in [a["id"] for a in t["artists"]] for t in top)
    albums = sp.artist_albums(artist_id)
    assert album["id"] in [a["id"] for a in albums["items"]]
    several = sp.tracks([AUDIO_TRACK_ID, alias("trk-0-0000001")])["tracks"]
    assert [t["id"] for t in several] == [AUDIO_TRACK_ID, alias("trk-0-0000001")]


def test_user_devices_playback_control_and_queue(stack: Stack, sp: spotipy.Spotify) -> None:
    me = sp.current_user()
    assert me["id"] == "u-de" and me["country"] == "DE" and me["product"] == "premium"
    devices = {d["id"]: d for d in sp.devices()["devices"]}
    assert set(devices) == {"phone", "speaker"}
    second = alias("trk-0-0000001")
    sp.start_playback(device_id="phone", uris=[f"spotify:track:{AUDIO_TRACK_ID}"], position_ms=500)
    state = stack.wait_for("playback on the phone", lambda: (sp.current_playback() or {}).get("item") and
                           sp.current_playback(), timeout=30)
    assert state["item"]["id"] == AUDIO_TRACK_ID and state["device"]["id"] == "phone"
    active = {d["id"]: d["is_active"] for d in sp.devices()["devices"]}
    assert active == {"phone": True, "speaker": False}
    sp.add_to_queue(f"spotify:track:{second}")
    queue = stack.wait_for("the queued track", lambda: (q := sp.queue())["queue"] and q, timeout=30)
    assert queue["currently_playing"]["id"] == AUDIO_TRACK_ID and queue["queue"][0]["id"] == second
    sp.pause_playback()
    sp.seek_track(2000)
    sp.volume(30, device_id="phone")
    sp.next_track()
    state = stack.wait_for("the next track", lambda: (p := sp.current_playback())["item"]["id"] == second and p,
                           timeout=30)
    assert state["is_playing"] is False or state["item"]["id"] == second
    assert sp.currently_playing()["item"]["id"] == second
    sp.transfer_playback("speaker", force_play=True)
    state = stack.wait_for("the transfer", lambda: (p := sp.current_playback())["device"]["id"] == "speaker" and p,
                           timeout=30)
    assert state["is_playing"] is True


def test_playlists_create_add_items_reorder_remove(stack: Stack, sp: spotipy.Spotify) -> None:
    ids = [alias(f"trk-0-000000{i}") for i in range(3)]
    pl = sp.user_playlist_create("u-de", "Spotipy road")
    assert pl["name"] == "Spotipy road" and pl["owner"]["id"] == "u-de"
    sp.playlist_add_items(pl["id"], ids)
    got = stack.wait_for("the added items", lambda: (p := sp.playlist_items(pl["id"]))["total"] == 3 and p,
                         timeout=30)
    assert [e["track"]["id"] for e in got["items"]] == ids
    sp.playlist_reorder_items(pl["id"], range_start=2, insert_before=0)
    sp.playlist_remove_all_occurrences_of_items(pl["id"], [ids[0]])
    got = stack.wait_for("the edits", lambda: (p := sp.playlist_items(pl["id"]))["total"] == 2 and p, timeout=30)
    assert [e["track"]["id"] for e in got["items"]] == [ids[2], ids[1]]
    mine = sp.current_user_playlists()
    assert pl["id"] in [p["id"] for p in mine["items"]]
    assert sp.playlist(pl["id"])["tracks"]["total"] == 2
