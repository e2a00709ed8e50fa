"""Public ids (playback/ids.py): alphanumeric ids unchanged, others a reversible base62 alias."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from playback import ids

SPOTIPY_ID = re.compile(r"^[0-9A-Za-z]+$")  # spotipy 2.26's check of an id before any request


def _decode_by_hand(alias: str) -> str:
    """An independent decoder: positional sum of powers of 62, bytes after the 0x01 marker."""
    digits = "0123456789" + "".join(chr(c) for c in range(ord("A"), ord("Z") + 1)) + \
        "".join(chr(c) for c in range(ord("a"), ord("z") + 1))
    body = alias[2:]
    n = sum(digits.index(c) * 62 ** (len(body) - 1 - i) for i, c in enumerate(body))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    assert raw[0] == 1
    return raw[1:].decode("utf-8")


def test_alphanumeric_ids_stay_as_they_are():
    for value in ("4iV5W9uYEdYUVa79Axb7Rh", "abc", "0", "Z9"):
        assert ids.public_id(value) == value
        assert ids.internal_id(value) == value


def test_known_alias():
    # 0x01 0x2d ('-') = 301 = 4 * 62 + 53 -> digits '4', 'r'
    assert ids.public_id("-") == "0z4r"
    assert ids.internal_id("0z4r") == "-"


def test_synthetic_catalog_id_passes_spotipy_check_and_decodes():
    alias = ids.public_id("trk-0-0000000")
    assert SPOTIPY_ID.match(alias)
    assert alias.startswith(ids.PREFIX)
    assert _decode_by_hand(alias) == "trk-0-0000000"
    assert ids.internal_id(alias) == "trk-0-0000000"
    assert ids.public_uri("track", "trk-0-0000000") == f"spotify:track:{alias}"


def test_non_canonical_prefixed_strings_are_left_alone():
    # alphanumeric ids beginning with the prefix that are not an alias of a non-alphanumeric id
    for value in ("0z", "0zz", "0z1" + "0" * 5, ids.PREFIX + "abc", "0zABCDEF"):
        decoded = ids.internal_id(value)
        assert decoded == value or ids.public_id(decoded) == value


def test_alias_of_an_alphanumeric_string_is_not_decoded():
    # the base62 form of b"\x01abc" would decode to an alphanumeric id, which is never aliased
    n = int.from_bytes(b"\x01abc", "big")
    s = ""
    while n:
        n, r = divmod(n, 62)
        s = ids.ALPHABET[r] + s
    assert ids.internal_id("0z" + s) == "0z" + s


@settings(max_examples=500)
@given(st.text(min_size=0, max_size=80))
def test_round_trip_any_text(value):
    pub = ids.public_id(value)
    assert SPOTIPY_ID.match(pub)
    assert ids.internal_id(pub) == value
    assert ids.public_id(value) == pub  # deterministic


@settings(max_examples=300)
@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_distinct_ids_get_distinct_public_ids(a, b):
    if a != b:
        assert ids.public_id(a) != ids.public_id(b)


@given(st.from_regex(r"[0-9A-Za-z]{1,30}", fullmatch=True))
def test_alphanumeric_is_identity(value):
    assert ids.public_id(value) == value
