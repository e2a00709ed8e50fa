"""The real ``spotipy`` 2.26 client against the playback API as real processes (broker, worker, API).

The stack is tests/integration/test_api_http.py's (synthetic catalog, users ``u-de`` with devices
``phone`` and ``speaker``); spotipy's API prefix points at our server and it sends a plain bearer token
from ``playlog token``. Every call must succeed (no ``SpotifyException``) and answer what the test's
own commands produced (the catalog answers against a small catalog the module produces itself, with
alphanumeric ids). Synthetic ids (``trk-0-0000000``) fail spotipy's id check, so the client uses
their public alias (playback/ids.py), computed here independently.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import spotipy

from tests.integration.test_api_http import (
    AUDIO_TRACK,
    AUDIO_TRACK_ID,
    Stack,
    _run,
    start_stack,
    stop_stack,
)

# The test's own small catalog (alphanumeric ids: public id = id), produced next to the synthetic one:
# two artists, two albums (1994 and 2003), three tracks licensed in DE, each with a rendition
# (metadata only: a manifest, hence a play grant, needs one; no segment of it is ever fetched).
ARTISTS = {"spa1": ("Kestrel Nimbus", "zydeco"), "spa2": ("Marzipan Coastline", "vaporwave")}
ALBUMS = {"spal1": ("Umbral Quay", "spa1", "1994-05-01"), "spal2": ("Zinc Almanac", "spa2", "2003-09-09")}
TRACKS = {  # id: (title, album, isrc)
    "spt1": ("Obsidian Tramway", "spal1", "QZSPT0000001"),
    "spt2": ("Papyrus Gondola", "spal1", "QZSPT0000002"),
    "spt3": ("Vitreous Wharf", "spal2", "QZSPT0000003"),
}


def own_catalog() -> list[dict]:
    at = "2026-01-02T00:00:00Z"
    out: list[dict] = []
    for a, (name, genre) in ARTISTS.items():
        out.append({"type": "artist.ingested", "artist_id": a, "name": name, "genres": [genre]})
    for al, (title, artist, date) in ALBUMS.items():
        out.append({"type": "album.ingested", "album_id": al, "title": title, "artist_ids": [artist],
                    "release_date": date, "label": "Spotipy Test", "artwork_uri": None})
    for t, (title, album, isrc) in TRACKS.items():
        out.append({"type": "track.ingested", "track_id": t, "isrc": isrc, "title": title, "album_id": album,
                    "artist_ids": [ALBUMS[album][1]], "duration_ms": 200_000, "genres": [ARTISTS[ALBUMS[album][1]][1]],
                    "explicit": False, "distributor": "d",
                    "rightsholders": [{"rightsholder_id": "rh-spotipy", "share_ppm": 1_000_000}]})
        out.append({"type": "rights.changed", "track_id": t, "territory": "DE", "allowed": True,
                    "valid_from": None, "valid_to": None})
    for n, t in enumerate(TRACKS):
        out.append({"type": "audio.encoded", "track_id": t, "file_id": f"{n + 1:032x}", "codec": "aac",
                    "container": "adts", "bitrate_kbps": 96, "sample_rate_hz": 44100, "segment_ms": 10_000,
                    "segment_count": 20, "byte_size": 240_000, "storage_key": f"audio/spotipy-{t}",
                    "loudness_lufs": -14.0, "true_peak_dbtp": -1.0})
    return [{**e, "event_id": f"spotipy-{i}", "occurred_at": at} for i, e in enumerate(out)]


def alias(internal: str) -> str:
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    n, out = int.from_bytes(b"\x01" + internal.encode(), "big"), ""
    while n:
        n, r = divmod(n, 62)
        out = alphabet[r] + out
    return "0z" + out


@pytest.fixture(scope="module")
def stack(kafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("spotipy")
    s = start_stack(kafka, root)
    try:
        tok = s.token("u-de")
        own = root / "own-catalog.jsonl"
        own.write_text("".join(json.dumps(e) + "\n" for e in own_catalog()))
        _run(s.env, "produce", str(own))

        def ready() -> bool:
            try:
                status, body = s.api("GET", f"/v1/tracks/{AUDIO_TRACK}", tok)
                own_status, own_body = s.api("GET", "/v1/tracks/spt3", tok)
                _, album = s.api("GET", "/v1/albums/spal1", tok)
            except OSError:
                return False
            return (status == 200 and body.get("is_playable") is True and own_status == 200
                    and own_body.get("is_playable") is True and (album or {}).get("total_tracks") == 2)

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


def test_own_catalog_track_album_artist_and_search_field_filters(sp: spotipy.Spotify) -> None:
    track = sp.track("spt1", market="DE")
    assert (track["name"], track["album"]["id"], track["artists"][0]["name"]) == ("Obsidian Tramway", "spal1", "Kestrel Nimbus")
    assert track["external_ids"]["isrc"] == "QZSPT0000001" and track["is_playable"] is True
    album = sp.album("spal1")
    assert album["name"] == "Umbral Quay" and album["release_date"] == "1994-05-01"
    assert [t["id"] for t in album["tracks"]["items"]] == ["spt1", "spt2"]
    artist = sp.artist("spa2")
    assert artist["name"] == "Marzipan Coastline" and artist["genres"] == ["vaporwave"]

    def found(q: str, kind: str = "track") -> set[str]:
        return {i["id"] for i in sp.search(q=q, type=kind, limit=50)[kind + "s"]["items"]}

    assert found('artist:"Kestrel Nimbus"') == {"spt1", "spt2"}
    assert found('artist:"Kestrel Nimbus" year:1990-1999') == {"spt1", "spt2"}
    assert found("year:2000-2009 artist:marzipan") == {"spt3"}
    assert found('track:"papyrus gondola"') == {"spt2"}
    assert found("isrc:QZSPT0000003") == {"spt3"}
    assert found("wharf album:zinc") == {"spt3"}
    assert found("artist:kestrel", "album") == {"spal1"}
    assert found("genre:vaporwave", "artist") == {"spa2"}
    # the older "country" parameter: spt3 is licensed in DE only
    assert sp._get("tracks/spt3", country="FR")["is_playable"] is False
    assert sp._get("tracks/spt3", country="DE")["is_playable"] is True


def test_shuffle_repeat_and_device_id(stack: Stack, sp: spotipy.Spotify) -> None:
    own = ["spt1", "spt2", "spt3"]
    sp.start_playback(device_id="phone", uris=[f"spotify:track:{t}" for t in own])
    stack.wait_for("the new context", lambda: (p := sp.current_playback()) and p["item"]["id"] == "spt1", timeout=30)
    sp.shuffle(True, device_id="phone")
    state = sp.current_playback()
    assert state["shuffle_state"] is True and state["repeat_state"] == "off" and state["item"]["id"] == "spt1"
    upcoming = [t["id"] for t in sp.queue()["queue"]]
    assert sorted(upcoming) == ["spt2", "spt3"]  # the rest of the context, in the shuffled order
    sp.next_track()
    assert sp.current_playback()["item"]["id"] == upcoming[0]
    sp.repeat("track")
    sp.next_track()
    state = sp.current_playback()
    assert state["repeat_state"] == "track" and state["item"]["id"] == upcoming[0]  # the same track again
    sp.shuffle(False)
    sp.repeat("context")
    current = upcoming[0]
    after = own[own.index(current) + 1:]
    assert [t["id"] for t in sp.queue()["queue"]] == after  # context order after the current item
    for _ in range(len(after) + 1):
        sp.next_track()
    state = sp.current_playback()
    assert state["item"]["id"] == "spt1" and state["shuffle_state"] is False  # wrapped to the first item
    with pytest.raises(spotipy.SpotifyException) as err:
        sp.pause_playback(device_id="toaster")
    assert err.value.http_status == 404 and "toaster" in err.value.msg
    sp.repeat("off", device_id="speaker")
    assert sp.current_playback()["repeat_state"] == "off"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def test_recently_played_and_top_items(stack: Stack, sp: spotipy.Spotify) -> None:
    tok = stack.token("u-de")
    now = int(time.time() * 1000)
    plays = [("spt1", now - 90_000), ("spt3", now - 60_000), ("spt1", now - 30_000)]  # oldest first
    events = []
    for i, (track, at) in enumerate(plays):
        status, manifest = stack.api("GET", f"/v1/playback/{track}/manifest", tok)
        assert status == 200, manifest
        events.append({"type": "play.completed", "event_id": f"spotipy-play-{i}", "occurred_at": _iso(at),
                       "play_id": manifest["play_id"], "user_id": "u-de", "track_id": track, "ms_played": 200_000,
                       "country": "DE", "product": "premium"})
    status, body = stack.api("POST", "/v1/events", tok, {"events": events})
    assert status == 202, body

    def recent() -> dict | None:
        got = sp.current_user_recently_played(limit=2)
        return got if {i["track"]["id"] for i in got["items"]} >= {"spt1", "spt3"} else None

    page = stack.wait_for("the plays in recently played", recent, timeout=60)
    newest = sorted(plays, key=lambda p: -p[1])
    assert [(i["track"]["id"], i["played_at"]) for i in page["items"]] == [(t, _iso(at)) for t, at in newest[:2]]
    assert page["cursors"]["before"] == str(newest[1][1])
    older = sp.current_user_recently_played(limit=2, before=newest[1][1])
    assert [(i["track"]["id"], i["played_at"]) for i in older["items"]] == [(newest[2][0], _iso(newest[2][1]))]
    newer = sp.current_user_recently_played(limit=1, after=newest[1][1])
    assert [i["played_at"] for i in newer["items"]] == [_iso(newest[0][1])]
    for time_range in ("short_term", "medium_term", "long_term"):
        top_tracks = sp.current_user_top_tracks(limit=2, time_range=time_range)
        assert [t["id"] for t in top_tracks["items"]] == ["spt1", "spt3"]  # two plays, then one
        top_artists = sp.current_user_top_artists(limit=2, time_range=time_range)
        assert [a["id"] for a in top_artists["items"]] == ["spa1", "spa2"]  # spt1's artist, then spt3's
    assert sp.current_user_top_tracks(limit=1, offset=1)["items"][0]["id"] == "spt3"


def test_playlist_replace_and_tracks_forms(stack: Stack, sp: spotipy.Spotify) -> None:
    pl = sp.current_user_playlist_create("Replace me", public=False)
    sp.playlist_add_items(pl["id"], ["spt1", "spt2"])
    sp.playlist_replace_items(pl["id"], ["spt3", "spt1"])
    got = stack.wait_for("the replaced items", lambda: (p := sp.playlist_items(pl["id"]))["total"] == 2 and
                         [e["track"]["id"] for e in p["items"]] == ["spt3", "spt1"] and p, timeout=30)
    assert got["items"][0]["track"]["name"] == "Vitreous Wharf"
    sp.playlist_reorder_items(pl["id"], range_start=1, insert_before=0, snapshot_id=sp.playlist(pl["id"])["snapshot_id"])
    sp.playlist_remove_all_occurrences_of_items(pl["id"], ["spt3"])
    got = stack.wait_for("the edits", lambda: (p := sp.playlist_items(pl["id"]))["total"] == 1 and p, timeout=30)
    assert [e["track"]["id"] for e in got["items"]] == ["spt1"]
