"""The CDN's pure parts: Range header parsing, ETag matching, content types, the LRU edge cache."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playback.cdn import UNSATISFIABLE, ByteRange, content_type_for, etag_matches, parse_range
from playback.edge_cache import EdgeCache


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, None),
        ("", 100, None),
        ("bytes=0-0", 100, ByteRange(0, 0)),
        ("bytes=10-19", 100, ByteRange(10, 19)),
        ("bytes=10-", 100, ByteRange(10, 99)),
        ("bytes=-30", 100, ByteRange(70, 99)),
        ("bytes=-1000", 100, ByteRange(0, 99)),
        ("bytes=90-1000", 100, ByteRange(90, 99)),
        ("bytes=99-99", 100, ByteRange(99, 99)),
        ("Bytes = 5-6", 100, ByteRange(5, 6)),
        ("bytes= 5-6 ,", 100, ByteRange(5, 6)),
        ("bytes=100-", 100, UNSATISFIABLE),
        ("bytes=100-200", 100, UNSATISFIABLE),
        ("bytes=-0", 100, UNSATISFIABLE),
        ("bytes=0-", 0, UNSATISFIABLE),
        ("bytes=-5", 0, UNSATISFIABLE),
        # ignored: full 200
        ("bytes=20-10", 100, None),
        ("bytes=0-1,5-9", 100, None),
        ("bytes=abc", 100, None),
        ("bytes=-", 100, None),
        ("bytes=1-2-3", 100, None),
        ("items=0-5", 100, None),
        ("bytes 0-5", 100, None),
        ("bytes=+1-5", 100, None),
    ],
)
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(min_value=0, max_value=5000),
    first=st.one_of(st.none(), st.integers(min_value=0, max_value=6000)),
    last=st.one_of(st.none(), st.integers(min_value=0, max_value=6000)),
)
def test_property_ranges_agree_with_python_slices(size, first, last):
    header = f"bytes={'' if first is None else first}-{'' if last is None else last}"
    result = parse_range(header, size)
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    if first is None and last is None:
        assert result is None
    elif first is None:  # suffix
        if last == 0 or size == 0:
            assert result is UNSATISFIABLE
        else:
            assert data[result.start : result.end + 1] == data[-last:]
    elif last is not None and last < first:
        assert result is None
    elif first >= size:
        assert result is UNSATISFIABLE
    else:
        stop = size if last is None else last + 1
        assert data[result.start : result.end + 1] == data[first:stop]
        assert 0 <= result.start <= result.end < size and result.length == len(data[first:stop])


def test_etag_matching():
    assert etag_matches('"abc"', '"abc"')
    assert etag_matches('W/"abc"', '"abc"')
    assert etag_matches('"x", "abc"', '"abc"')
    assert etag_matches("*", '"abc"')
    assert not etag_matches('"abd"', '"abc"')
    assert not etag_matches("abc", '"abc"')


def test_content_types():
    assert content_type_for({"content_type": "audio/mp4"}, "aac") == "audio/mp4"
    assert content_type_for({"container": "adts", "codec": "aac"}, "bin") == "audio/aac"
    assert content_type_for({"codec": "opus"}, "bin") == "audio/ogg"
    assert content_type_for({}, "mp3") == "audio/mpeg"
    assert content_type_for({}, "ogg") == "audio/ogg"
    assert content_type_for({"content_type": "nonsense"}, "xyz") == "application/octet-stream"


def test_edge_cache_lru_by_bytes():
    cache = EdgeCache(budget_bytes=100, max_item_bytes=60)
    assert cache.get("a") is None and cache.misses == 1 and cache.hit_ratio == 0.0
    assert cache.put("a", "A", 40) and cache.put("b", "B", 40)
    assert cache.get("a") == "A"  # a is now the most recent
    assert cache.put("c", "C", 40)  # evicts b, the least recently used
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.size_bytes == 80 and cache.evictions == 1 and len(cache) == 2
    assert not cache.put("big", "X", 61)  # larger than max_item_bytes: not admitted
    assert "big" not in cache and cache.size_bytes == 80
    assert cache.put("a", "A2", 10)  # replacing adjusts the size
    assert cache.size_bytes == 50 and cache.get("a") == "A2"
    assert cache.hits == 2 and cache.misses == 1
    assert cache.hit_ratio == pytest.approx(2 / 3)


def test_edge_cache_budget_never_exceeded():
    cache = EdgeCache(budget_bytes=1000)
    assert cache.max_item_bytes == 250
    for i in range(200):
        cache.put(i, i, 1 + (i * 37) % 250)
        assert cache.size_bytes <= 1000
    assert cache.size_bytes == sum(1 + (k * 37) % 250 for k in range(200) if k in cache)
    with pytest.raises(ValueError):
        EdgeCache(-1)
    empty = EdgeCache(0)
    assert not empty.put("a", "A", 1) and empty.put("z", "Z", 0)
