"""The replica's pure apply step: canonicalization, derived indexes, listening folds, pending overlays."""

from __future__ import annotations

from playback.replica import Replica, topic_names
from processors import taste_view, views
from processors.grants import NONCE_CHARS, SIG_CHARS, VERSION
from tests.support.taste_fold import TasteFolder, popularity_doc
from tests.unit.test_api_routes import T0, catalog_events, ev, track


def fed(events: list[dict]) -> Replica:
    r = Replica()
    stores: dict[str, dict] = {}
    for spec in views.VIEWS:
        if spec.name == "player":
            continue
        published, _ = views.apply_batch(spec, stores.setdefault(spec.name, {}), [(None, e) for e in events])
        for key, (_, doc) in published.items():
            r.apply(spec.name, key, doc)
    r.search.commit()
    return r


def test_topic_names_cover_views_and_event_topics() -> None:
    assert topic_names("p.") == {"p.view.catalog": "catalog", "p.view.rights": "rights", "p.view.users": "users",
                                 "p.view.playlists": "playlists", "p.view.library": "library",
                                 "p.view.credentials": "credentials", "p.player": "player", "p.view.taste": "taste", "p.view.popularity": "popularity", "p.view.similar": "similar"}


def test_alias_resolution_whatever_the_order() -> None:
    x2, x1, y = track("x2", "Song", "I1", at=T0 + 5), track("x1", "Song", "I1", at=T0), track("y", "Other", "I2")
    # by hand from these three events (events.md): I1's earliest upload is x1 (T0 < T0 + 5), so x1 is
    # canonical and x2 its alias; y is alone with I2
    expected_index = {
        "first": {"x2": [T0 + 5, x2["event_id"], "I1"], "x1": [T0, x1["event_id"], "I1"], "y": [T0, y["event_id"], "I2"]},
        "canon": {"I1": [T0, x1["event_id"], "x1"], "I2": [T0, y["event_id"], "y"]},
    }
    for order in ([x2, x1, y], [y, x1, x2]):
        r = fed(order)
        assert r.index.to_dict() == expected_index
        assert {t: r.canonical_id(t) for t in ("x1", "x2", "y")} == {"x1": "x1", "x2": "x1", "y": "y"}
        assert r.members("x1") == ["x1", "x2"] and r.members("y") == ["y"]
        assert r.index.aliases("x1") == ["x2"] and r.index.aliases("y") == []
        assert r.index.canonical_ids() == ["x1", "y"]
        assert r.index.canonical_id("unknown") is None
        assert r.search.search("song", "track").ids == ["x1"]  # one logical track, canonical id


def test_late_earlier_ingest_moves_the_canonical_id_in_search() -> None:
    r = fed([track("late", "Tune", "I9", at=T0 + 100)])
    assert r.search.search("tune", "track").ids == ["late"]
    stores: dict = {}
    published, _ = views.apply_batch(views.VIEWS[0], stores, [(None, track("early", "Tune", "I9", at=T0))])
    for key, (_, doc) in published.items():
        r.apply("catalog", key, doc)
    r.search.commit()
    assert r.canonical_id("late") == "early"
    assert r.search.search("tune", "track").ids == ["early"]
    assert r.search.search("late", "track").ids == ["early"]  # the alias id finds the canonical track


def test_artist_renamed_after_its_tracks_reindexes_them() -> None:
    r = fed([track("t", "Song", "I1", artist="ar"),
             ev("artist.ingested", artist_id="ar", name="Old Name", genres=[])])
    assert r.search.search("old name", "track").ids == ["t"]
    r.apply("catalog", "artist:ar", {"kind": "artist", "artist_id": "ar", "name": "Fresh Name", "genres": []})
    r.search.commit()
    assert r.search.search("fresh", "track").ids == ["t"] and r.search.search("old name", "track").ids == []


def test_playability_reasons() -> None:
    r = fed(catalog_events())
    assert r.playability("t1", "DE", T0 + 1) == (True, "ok")
    assert r.playability("t1", "US", T0 + 1)[1].endswith("(region blocked)")
    assert r.playability("t1", "JP", T0 + 1)[0] is False
    assert r.playability("t3", "DE", T0 + 1) == (False, "track is taken down in DE")
    assert r.playability("zz", "DE", T0 + 1) == (False, "unknown track")


def test_taste_documents_and_popularity_reach_profiles_and_boost_search() -> None:
    r = fed(catalog_events())
    folder = TasteFolder(r)
    for i in range(12):
        for etype, ms in (("play.progress", 31_000), ("play.completed", 200_000)):
            e = ev(etype, play_id=f"p{i}", user_id="u1", track_id="t1b", ms_played=ms, country="DE",
                   product="premium", **({"context_uri": None} if etype == "play.progress" else {}))
            folder.feed([e, e])  # redelivered
    assert r.profiles["u1"]["signals"] == 24  # stream + complete per play
    assert "seen" not in r.profiles["u1"]  # the stage's dedupe window stays in taste.state
    assert r.listened("u1") == {"t1"}  # the canonical id of the alias t1b
    assert r.neighbours("t1") == []
    r.apply("popularity", "t1", popularity_doc("t1", {"DE": 12}))
    r.apply("similar", "t1", {"track_id": "t1", "neighbours": [["t2", 0.5]], "as_of": 0})
    assert r.streams == {"t1": 12} and r.popular("DE") == {"t1": 12} and r.neighbours("t1") == [("t2", 0.5)]
    r.search.commit()
    assert r.search.search("midnight", "track").ids == ["t1"]
    r.apply("popularity", "t1", popularity_doc("t1", {"SE": 3}))  # the next batch run: DE dropped out
    assert r.popular("DE") == {} and r.popular("SE") == {"t1": 3} and r.streams == {"t1": 3}
    r.apply("taste", "u1", None)
    assert r.taste_profile("u1") is None and r.listened("u1") == frozenset()


def test_own_plays_count_until_the_taste_view_has_them() -> None:
    r = fed(catalog_events())
    grant = f"{VERSION}.1700000000000.{'n' * NONCE_CHARS}.u1.t1.{'s' * SIG_CHARS}"
    e = ev("play.started", play_id=grant, user_id="u1", track_id="t1", country="DE", product="premium",
           context_uri=None)
    r.add_pending(e)
    assert r.recent_play("u1", "t1")["play_id"] == grant
    assert r.recently_played("u1") == ["t1"]


def test_malformed_records_are_skipped_not_fatal() -> None:
    r = Replica(search=False)
    r.apply("catalog", "weird:1", {"x": 1})
    r.apply("player", "u", {"type": "play.started"})
    r.apply("nope", "k", {})
    r.apply("users", "u1", {"user_id": "u1", "country": "DE", "product": "free"})
    assert r.skipped == 3 and r.applied == 1 and "u1" in r.users
    r.apply("users", "u1", None)  # tombstone
    assert "u1" not in r.users


def test_pending_player_events_fold_on_top_until_delivered() -> None:
    r = Replica(search=False)
    play = ev("player.play_requested", user_id="u", device_id="d", track_ids=["a", "b"], context_uri=None,
              offset=0, position_ms=0)
    nxt = ev("player.skipped_to", user_id="u", device_id="d", direction="next")
    r.add_pending(play)
    r.add_pending(nxt)
    assert r.player_state("u")["item"] == "b" and r.players == {}
    r.apply("player", "u", play)
    assert r.player_state("u")["item"] == "b" and len(r.pending_player["u"]) == 1
    r.apply("player", "u", nxt)
    assert r.pending_player == {} and r.player_state("u")["item"] == "b"


def test_an_erased_user_loses_taste_and_history_and_never_gets_them_back() -> None:
    def play(i: int, user: str) -> list[dict]:
        return [ev(etype, play_id=f"q{user}{i}", user_id=user, track_id="t1", ms_played=ms, country="DE",
                   product="premium", **({"context_uri": None} if etype == "play.progress" else {}))
                for etype, ms in (("play.progress", 31_000), ("play.completed", 200_000))]

    users = [ev("user.registered", user_id=u, country="DE", product="premium", display_name=f"N {u}")
             for u in ("u1", "u2")]
    r = fed(catalog_events() + users)
    folder = TasteFolder(r)
    for i in range(3):
        for user in ("u1", "u2"):
            folder.feed(play(i, user))
    assert r.profiles["u1"]["signals"] == 6 and "u1" in r.listeners
    users_view = next(spec for spec in views.VIEWS if spec.name == "users")
    erased = views.apply_batch(users_view, {}, [(None, e) for e in users[:1]]
                               + [(None, ev("user.erasure_requested", user_id="u1"))])[0]
    r.apply("users", "u1", erased["u1"][1])
    assert r.users["u1"]["erased"] and r.users["u1"]["display_name"] is None
    assert "u1" not in r.profiles and "u1" not in r.listeners and "u1" not in r.recent_plays
    # a late document of the erased user (published before the stage saw the erasure) is ignored
    r.apply("taste", "u1", taste_view.to_view(folder.states["u1"]))
    assert "u1" not in r.profiles and "u1" not in r.listeners and "u1" not in r.recent_plays
    assert r.profiles["u2"]["signals"] == 6
