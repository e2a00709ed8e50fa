"""The Subsonic envelope in JSON and XML, checked against another server's rendering of the same payloads.

Expected XML comes from Navidrome's response snapshots (server/subsonic/responses/.snapshots, for
Genres, User, OpenSubsonicExtensions, MusicFolders, License and the empty response) and the error
example of the Subsonic API documentation: given the JSON payload Navidrome renders, our XML must be
the element tree Navidrome renders (attributes, text, children; whitespace aside).
"""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest

from playback.subsonic import render
from playback.subsonic.render import Code, SubsonicError, envelope, to_json, to_xml

NS = "{http://subsonic.org/restapi}"

# (payload as Navidrome's JSON snapshot has it, the XML snapshot's body)
CASES = {
    "genres": ({"genres": {"genre": [{"value": "Rock", "songCount": 1000, "albumCount": 100},
                                     {"value": "Reggae", "songCount": 500, "albumCount": 50},
                                     {"value": "Pop", "songCount": 0, "albumCount": 0}]}},
               '<genres><genre songCount="1000" albumCount="100">Rock</genre>'
               '<genre songCount="500" albumCount="50">Reggae</genre><genre songCount="0" albumCount="0">Pop</genre>'
               "</genres>"),
    "user": ({"user": {"username": "deluan", "email": "navidrome@deluan.com", "scrobblingEnabled": False,
                       "adminRole": False, "settingsRole": False, "downloadRole": False, "uploadRole": False,
                       "playlistRole": False, "coverArtRole": False, "commentRole": False, "podcastRole": False,
                       "streamRole": False, "jukeboxRole": False, "shareRole": False, "videoConversionRole": False,
                       "folder": [1]}},
             '<user username="deluan" email="navidrome@deluan.com" scrobblingEnabled="false" adminRole="false" '
             'settingsRole="false" downloadRole="false" uploadRole="false" playlistRole="false" coverArtRole="false" '
             'commentRole="false" podcastRole="false" streamRole="false" jukeboxRole="false" shareRole="false" '
             'videoConversionRole="false"><folder>1</folder></user>'),
    "extensions": ({"openSubsonicExtensions": [{"name": "template", "versions": [1, 2]}]},
                   '<openSubsonicExtensions name="template"><versions>1</versions><versions>2</versions>'
                   "</openSubsonicExtensions>"),
    "folders": ({"musicFolders": {"musicFolder": [{"id": 111, "name": "aaa"}, {"id": 222, "name": "bbb"}]}},
                '<musicFolders><musicFolder id="111" name="aaa"></musicFolder><musicFolder id="222" name="bbb">'
                "</musicFolder></musicFolders>"),
    "license": ({"license": {"valid": True}}, '<license valid="true"></license>'),
    "empty": ({}, ""),
}


def tree(element: ElementTree.Element) -> tuple:
    """A comparable form: tag without namespace, attributes, stripped text, children in order."""
    return (element.tag.removeprefix(NS), dict(element.attrib), (element.text or "").strip(),
            [tree(c) for c in element])


def navidrome_xml(body: str, status: str = "ok") -> ElementTree.Element:
    return ElementTree.fromstring(
        f'<subsonic-response xmlns="http://subsonic.org/restapi" status="{status}" version="1.16.1" type="playlog" '
        f'serverVersion="{render.SERVER_VERSION}" openSubsonic="true">{body}</subsonic-response>')


@pytest.mark.parametrize("case", sorted(CASES))
def test_xml_is_the_element_tree_another_server_renders(case: str) -> None:
    payload, body = CASES[case]
    ours = ElementTree.fromstring(to_xml(envelope(payload)))
    assert tree(ours) == tree(navidrome_xml(body))


@pytest.mark.parametrize("case", sorted(CASES))
def test_json_is_the_payload_under_subsonic_response(case: str) -> None:
    payload, _ = CASES[case]
    doc = json.loads(to_json(envelope(payload)))
    assert doc == {"subsonic-response": {"status": "ok", "version": "1.16.1", "type": "playlog",
                                         "serverVersion": render.SERVER_VERSION, "openSubsonic": True, **payload}}


def test_error_in_json_and_xml_as_the_subsonic_documentation_shows() -> None:
    error = SubsonicError(Code.WRONG_CREDENTIALS)
    doc = json.loads(to_json(envelope(error=error)))["subsonic-response"]
    assert doc["status"] == "failed" and doc["error"] == {"code": 40, "message": "Wrong username or password"}
    ours = ElementTree.fromstring(to_xml(envelope(error=error)))
    expected = navidrome_xml('<error code="40" message="Wrong username or password"/>', status="failed")
    assert tree(ours) == tree(expected)


def test_none_is_left_out_and_xml_never_carries_illegal_characters() -> None:
    payload = {"song": {"id": "t1", "title": "bad\x00\x07title", "album": None, "genres": [{"name": "x"}, None]}}
    doc = json.loads(to_json(envelope(payload)))["subsonic-response"]
    assert doc["song"] == {"id": "t1", "title": "bad\x00\x07title", "genres": [{"name": "x"}]}
    root = ElementTree.fromstring(to_xml(envelope(payload)))  # parses: the control characters are gone
    song = root.find(f"{NS}song")
    assert song is not None and song.get("title") == "badtitle" and song.get("album") is None
    assert [g.get("name") for g in song.findall(f"{NS}genres")] == ["x"]


def test_formats_and_jsonp() -> None:
    doc = envelope({"license": {"valid": True}})
    assert render.response_format("json") == "json" and render.response_format("JSON") == "json"
    assert render.response_format(None) == "xml" and render.response_format("yaml") == "xml"
    body, ctype = render.render(doc, "jsonp", "cb_1")
    assert ctype == "application/javascript" and body.startswith(b"cb_1(") and body.endswith(b");")
    assert json.loads(body[5:-2]) == json.loads(to_json(doc))
    body, ctype = render.render(doc, "jsonp", "alert(1)//")  # not an identifier: plain JSON
    assert ctype == "application/json" and json.loads(body) == json.loads(to_json(doc))
    body, ctype = render.render(doc, "xml")
    assert ctype == "application/xml" and body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_every_code_has_the_documented_number() -> None:
    assert [int(c) for c in Code] == [0, 10, 20, 30, 40, 41, 42, 43, 44, 50, 60, 70]
    assert SubsonicError(Code.NOT_FOUND, "x").message == "x"
    assert SubsonicError(Code.NOT_AUTHORIZED).message == "User is not authorized for the given operation"
