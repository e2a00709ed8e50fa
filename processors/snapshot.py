"""The royalty view's snapshot, in pieces (format 2): what a checkpoint holds (worker/checkpoint.py).

A snapshot is ``MAGIC`` then length-prefixed segments, each a zlib-compressed JSON document small
enough to encode or decode in a few milliseconds:

- the first is the header: ``{"version": 2, "facts", "reported", "catalog", "ingests", "rights",
  "takedowns", "pools"}`` (everything but the plays; small);
- then the plays of each UTC day, as columns (``{"day", "ids", "keys", "ms", "others": {play_id:
  {other user: ms}}}``), and, per
  period, the play ids last published as its streams (``{"period", "published": [...]}``), at
  most :data:`SEGMENT_ITEMS` each.

Why pieces: a 4M-play view is ~320 MB of JSON. Encoding or decoding it as one document holds the
GIL for seconds at a time (a single C call), which starved the Faust consumer thread's heartbeats
and cost the worker its partitions in the middle of a recovery. In pieces, the thread that encodes
or decodes lets the others run between two segments. And a day's segments are kept (compressed) by
the view until one of its plays changes (a period's published ids: until they change), so a
checkpoint re-encodes only the days that changed since the last one (mostly today: late events
touch a past day rarely), and a view restored from a checkpoint starts with every segment already
encoded.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from processors.royalties import RoyaltyState

MAGIC = b"PLVS2\n"
SEGMENT_ITEMS = 20_000
LEVEL = 1  # zlib: fast; the payload is mostly ids and numbers


def _pack(doc: Mapping[str, Any]) -> bytes:
    return zlib.compress(orjson.dumps(doc), LEVEL)


def encode_header(state: RoyaltyState, facts: int, reported: set[tuple[str, str, str]],
                  published_acked: bool = False) -> bytes:
    """``published_acked``: the writer knows every stream it counts as published was acknowledged
    by the broker (worker/royalty.py flushes before it snapshots), so a view restored from it need
    not publish every period again."""
    return _pack({"version": 2, "facts": facts, "reported": sorted(reported), "published_acked": published_acked,
                  **state.tables_dict()})


def day_key(day: int) -> str:
    """The segment key of the plays of a UTC day (day number since the epoch)."""
    return f"d:{day}"


def published_key(period: str) -> str:
    return f"p:{period}"


def all_keys(state: RoyaltyState, published: Mapping[str, set[str]]) -> set[str]:
    """Every segment key the view has (walks every (user, day) group: for views whose segments
    were never tracked, e.g. restored from a format-1 snapshot)."""
    return ({day_key(day) for groups in state.by_period.values() for _, day in groups}
            | {published_key(p) for p in published})


def _plays_doc(state: RoyaltyState, day: int, pids: list[str]) -> dict[str, Any]:
    """Columns, not a document per play: the keys and ms are the state's own objects (tuples and
    ints), so encoding allocates next to nothing per play (a dict or list per play made it 10x
    slower, mostly in the allocator and the GC)."""
    accs = [state.plays[pid] for pid in pids]
    return {"day": day, "ids": pids, "keys": [a[0] for a in accs], "ms": [a[1] for a in accs],
            "others": {pid: a[2] for pid, a in zip(pids, accs, strict=True) if a[2]}}


def _add_plays(state: RoyaltyState, doc: Mapping[str, Any]) -> None:
    ids, keys, ms, others = doc["ids"], doc["keys"], doc["ms"], doc["others"]
    if not len(ids) == len(keys) == len(ms):
        raise ValueError("a plays segment whose columns differ in length")
    merge = state.merge_play
    for pid, key, m in zip(ids, keys, ms, strict=True):
        o = others.get(pid)
        merge(pid, tuple(key), m, tuple((u, um, False) for u, um in o.items()) if o else ())


def encode(state: RoyaltyState, published: Mapping[str, set[str]], keys: set[str]) -> dict[str, list[bytes]]:
    """The segments of ``keys``: a day's plays (one pass over the (user, day) groups of each period
    concerned), a period's published ids; a key with nothing left (a day whose plays all moved)
    gets no segment."""
    from processors.royalties import period_of_day

    days = {int(k[2:]): [] for k in keys if k.startswith("d:")}
    for period in {period_of_day(d) for d in days}:
        for (_, day), members in state.by_period.get(period, {}).items():
            pids = days.get(day)
            if pids is not None:
                pids.extend(members)
    out: dict[str, list[bytes]] = {}
    for day, pids in days.items():
        if pids:
            out[day_key(day)] = [_pack(_plays_doc(state, day, pids[i : i + SEGMENT_ITEMS]))
                                 for i in range(0, len(pids), SEGMENT_ITEMS)]
    for k in keys:
        if k.startswith("p:") and k[2:] in published:
            ids = sorted(published[k[2:]])
            out[k] = [_pack({"period": k[2:], "published": ids[i : i + SEGMENT_ITEMS]})
                      for i in range(0, max(len(ids), 1), SEGMENT_ITEMS)]
    return out


def assemble(header: bytes, cache: Mapping[str, list[bytes]]) -> bytes:
    parts = [MAGIC]
    for seg in (header, *(s for k in sorted(cache) for s in cache[k])):
        parts += (len(seg).to_bytes(4, "big"), seg)
    return b"".join(parts)


def segments(raw: bytes) -> Iterator[memoryview]:
    """The segments of a snapshot; ValueError when it is not one or is cut short."""
    if not raw.startswith(MAGIC):
        raise ValueError("not a format-2 royalty view snapshot")
    mv = memoryview(raw)
    pos, end = len(MAGIC), len(raw)
    while pos < end:
        if pos + 4 > end:
            raise ValueError("snapshot cut short in a segment's length")
        n = int.from_bytes(mv[pos : pos + 4], "big")
        pos += 4
        if pos + n > end:
            raise ValueError("snapshot cut short in a segment")
        yield mv[pos : pos + n]
        pos += n


def decode(raw: bytes, pause: float = 0.0) -> tuple[RoyaltyState, int, set[tuple[str, str, str]],
                                                    dict[str, set[str]], dict[str, list[bytes]], bool]:
    """``(state, facts, reported, published, segments per key, published_acked)`` of a format-2 snapshot;
    ValueError when it does not decode. Between two segments the thread sleeps ``pause`` (0: it
    still lets other threads take the GIL)."""
    try:
        it = segments(raw)
        head = orjson.loads(zlib.decompress(next(it)))
        if head.get("version") != 2:
            raise ValueError(f"unknown snapshot version {head.get('version')!r}")
        state = RoyaltyState.from_tables(head)
        facts = int(head["facts"])
        reported = {(str(a), str(b), str(c)) for a, b, c in head["reported"]}
        published: dict[str, set[str]] = {}
        cache: dict[str, list[bytes]] = {}
        for seg in it:
            time.sleep(pause)
            doc = orjson.loads(zlib.decompress(seg))
            if "ids" in doc:
                _add_plays(state, doc)
                key = day_key(int(doc["day"]))
            else:
                published.setdefault(doc["period"], set()).update(doc["published"])
                key = published_key(doc["period"])
            cache.setdefault(key, []).append(bytes(seg))
    except StopIteration:
        raise ValueError("snapshot without a header") from None
    except (zlib.error, orjson.JSONDecodeError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"not a royalty view snapshot: {exc!r}") from None
    return state, facts, reported, published, cache, bool(head.get("published_acked", False))
