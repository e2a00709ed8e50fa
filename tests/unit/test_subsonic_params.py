"""Subsonic parameters as real clients send them: ``.view`` names, booleans, repeats, ranges, versions."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from playback.subsonic.params import Params, check_version, method_key, parse_bool, parse_version
from playback.subsonic.render import Code, SubsonicError


@pytest.mark.parametrize(("raw", "key"), [("ping", "ping"), ("ping.view", "ping"), ("getAlbumList2.view", "getalbumlist2"),
                                          ("GetAlbumList2", "getalbumlist2"), ("search3.VIEW", "search3"),
                                          (" stream.view ", "stream")])
def test_method_names_with_and_without_view(raw: str, key: str) -> None:
    assert method_key(raw) == key


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("True", True), ("TRUE", True), ("1", True),
                                            ("false", False), ("False", False), ("0", False), (" true ", True)])
def test_booleans_as_clients_send_them(raw: str, value: bool) -> None:
    assert parse_bool(raw, "submission") is value
    assert Params([("submission", raw)]).bool("submission", not value) is value


@pytest.mark.parametrize("raw", ["yes", "no", "2", "tru", ""])
def test_other_booleans_are_refused_with_code_0_or_default(raw: str) -> None:
    if not raw:
        assert Params([("b", raw)]).bool("b", True) is True
        return
    with pytest.raises(SubsonicError) as err:
        Params([("b", raw)]).bool("b", True)
    assert err.value.code == Code.GENERIC and "b" in err.value.message


def test_query_then_form_values_repeat_in_order() -> None:
    query = MultiDict([("id", "a"), ("u", "me"), ("id", "b")])
    form = MultiDict([("id", "c"), ("f", "json")])
    p = Params.of(query, form)
    assert p.all("id") == ["a", "b", "c"] and p.str("id") == "a"
    assert p.str("u") == "me" and p.str("f") == "json" and p.str("nope") is None and "nope" not in p


def test_required_parameters_are_code_10() -> None:
    for params in (Params([]), Params([("id", "")]), Params([("id", "   ")])):
        with pytest.raises(SubsonicError) as err:
            params.required("id")
        assert err.value.code == Code.MISSING_PARAMETER and "'id'" in err.value.message
    with pytest.raises(SubsonicError) as err:
        Params([]).int("type", None, 0, 5)
    assert err.value.code == Code.MISSING_PARAMETER


@pytest.mark.parametrize("raw", ["1e3", "0x10", "1_000", "ten", "1.5", "99999999999999999999999"])
def test_integers_are_decimal_digits_in_range(raw: str) -> None:
    with pytest.raises(SubsonicError) as err:
        Params([("size", raw)]).int("size", 10, 0, 500)
    assert err.value.code == Code.GENERIC and "size" in err.value.message


def test_integer_bounds_and_defaults() -> None:
    assert Params([("size", "500")]).int("size", 10, 0, 500) == 500
    assert Params([("size", "+7")]).int("size", 10, 0, 500) == 7
    assert Params([]).int("size", 10, 0, 500) == 10 and Params([]).opt_int("size", 0, 5) is None
    for raw in ("501", "-1"):
        with pytest.raises(SubsonicError):
            Params([("size", raw)]).int("size", 10, 0, 500)
    assert Params([("i", "2"), ("i", "0")]).ints("i", 0, 3) == [2, 0]


def test_values_are_bounded() -> None:
    with pytest.raises(SubsonicError) as err:
        Params([("query", "x" * 5000)])
    assert err.value.code == Code.GENERIC
    with pytest.raises(SubsonicError):
        Params([("id", str(i)) for i in range(1001)])


def test_non_string_form_values_are_ignored_or_decoded() -> None:
    class Upload:  # what aiohttp gives for a multipart file field
        pass

    p = Params.of(MultiDict([("id", b"raw\xff"), ("file", Upload())]))
    assert p.all("id") == ["raw\ufffd"] and "file" not in p


def test_versions() -> None:
    assert parse_version("1.16.1") == (1, 16, 1) and parse_version("garbage") is None and parse_version("") is None
    check_version("1.16.1", "1.16.1")
    check_version("1.99.0", "1.16.1")  # newer minor versions are fine (OpenSubsonic clients send them)
    check_version("nonsense", "1.16.1")
    with pytest.raises(SubsonicError) as err:
        check_version("2.0.0", "1.16.1")
    assert err.value.code == Code.SERVER_TOO_OLD
    with pytest.raises(SubsonicError) as err:
        check_version("0.9", "1.16.1")
    assert err.value.code == Code.CLIENT_TOO_OLD
