"""The GDPR export document (processors/gdpr.py) holds every kind of a user's data, and only theirs."""

from __future__ import annotations

from core import pii
from processors.gdpr import build_export

KEY = bytes(range(32))
U = "u1"


def _ev(t: str, eid: str, at: int, **kw: object) -> dict:
    return {"type": t, "event_id": eid, "occurred_at": at, **kw}


def _topics() -> dict[str, list[dict]]:
    return {
        "users": [
            _ev("user.registered", "r1", 1, user_id=U, country="DE", product="premium",
                display_name=pii.seal(KEY, "k", U, "display_name", "Ada")),
            _ev("device.registered", "d1", 2, user_id=U, device_id="ph", device_type="phone",
                name=pii.seal(KEY, "k", U, "name", "Ada's phone")),
            _ev("user.registered", "r2", 1, user_id="u2", country="FR", product="free", display_name="Bob"),
        ],
        "listening": [
            _ev("play.completed", "p1c", 200_000, user_id=U, play_id="p1", track_id="t1", ms_played=180_000,
                device_id="ph", country="DE"),
            _ev("play.completed", "p2c", 200_000, user_id="u2", play_id="p2", track_id="t1", ms_played=180_000,
                device_id="x", country="FR"),
        ],
        "catalog": [_ev("track.ingested", "t1", 0, track_id="t1", artist_ids=["a1"], genres=["jazz"])],
        "player": [_ev("player.paused", "pp", 5, user_id=U, device_id="ph")],
        "playlists": [
            _ev("playlist.created", "c1", 3, playlist_id="pl1", user_id=U, owner_id=U, name="Mix",
                collaborative=False, public=True),
            _ev("playlist.created", "c2", 3, playlist_id="pl2", user_id="u2", owner_id="u2", name="Other",
                collaborative=False, public=True),
        ],
        "library": [_ev("library.starred", "s1", 4, user_id=U, item_type="track", item_id="t1")],
        "credentials": [_ev("app_password.issued", "a1", 6, user_id=U, password_id="pw", ciphertext="v1.xx")],
    }


def _reader(keys: dict) -> object:
    return lambda u, f, v: pii.read_field(lambda uu, k: keys.get((uu, k)), u, f, v)


def test_export_holds_every_kind_of_data_of_the_user() -> None:
    doc = build_export(U, _topics(), _reader({(U, "k"): KEY}), now_ms=300_000)
    assert doc["profile"]["display_name"] == "Ada" and doc["profile"]["country"] == "DE"
    assert doc["devices"] == [{"device_id": "ph", "device_type": "phone", "name": "Ada's phone"}]
    assert [p["play_id"] for p in doc["plays"]] == ["p1"]
    assert [p["event_id"] for p in doc["player"]] == ["pp"]
    assert [p["playlist_id"] for p in doc["playlists"]] == ["pl1"] and doc["playlists"][0]["name"] == "Mix"
    assert len(doc["library"]["items"]) == 1
    assert [a["id"] for a in doc["taste"]["top_artists"]] == ["a1"]
    assert [g["id"] for g in doc["taste"]["top_genres"]] == ["jazz"]
    assert doc["credentials"] == [{"type": "app_password.issued", "password_id": "pw", "occurred_at": 6}]
    assert "v1.xx" not in str(doc)  # never the sealed password
    assert doc["counts"] == {"devices": 1, "plays": 1, "player": 1, "playlists": 1, "credentials": 1}


def test_export_after_the_key_is_shredded_has_no_names() -> None:
    doc = build_export(U, _topics(), _reader({}), now_ms=300_000)
    assert doc["profile"]["display_name"] is None and doc["devices"][0]["name"] is None
    assert "Ada" not in str(doc)
