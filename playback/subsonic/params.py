"""Request parameters as real Subsonic clients send them (pure, no aiohttp).

- A method is ``/rest/<name>`` or ``/rest/<name>.view``; names are matched without regard to case
  (:func:`method_key`).
- Parameters come from the query string and, for ``POST`` with a form body
  (``application/x-www-form-urlencoded`` or ``multipart/form-data``, the OpenSubsonic ``formPost``
  extension), from the body too; both are merged, query first. A parameter may repeat (``id=1&id=2``).
- Booleans: ``true``/``false`` in any case, and ``1``/``0`` (:func:`parse_bool`); anything else is
  refused with code 0 naming the parameter.
- Integers: plain decimal digits with an optional sign, checked to the bounds the handler gives.
- A required parameter that is absent or empty is refused with code 10 (missing parameter).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from playback.subsonic.render import Code, SubsonicError

_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")
MAX_VALUE_CHARS = 4096  # any one parameter value (ids, names, queries, tokens)
MAX_VALUES = 1000  # repeated values of one parameter (song ids of a playlist edit, say)
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


def method_key(name: str) -> str:
    """The lookup key of a method path segment: without ``.view``, lower case."""
    name = name.strip()
    if name.lower().endswith(".view"):
        name = name[: -len(".view")]
    return name.lower()


def parse_bool(raw: str, name: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SubsonicError(Code.GENERIC, f"Invalid value for parameter {name}: expected true or false, got {raw[:40]!r}")


class Params:
    """The merged parameters of one request: ``values[name]`` is the list of values, in order."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        values: dict[str, list[str]] = {}
        for name, value in pairs:
            if len(value) > MAX_VALUE_CHARS:
                raise SubsonicError(Code.GENERIC, f"Parameter {name[:40]} is too long (at most {MAX_VALUE_CHARS} "
                                                  "characters)")
            bucket = values.setdefault(name, [])
            if len(bucket) >= MAX_VALUES:
                raise SubsonicError(Code.GENERIC, f"Too many values for parameter {name[:40]} (at most {MAX_VALUES})")
            bucket.append(value)
        self.values = values

    @classmethod
    def of(cls, *sources: Mapping[str, Any]) -> Params:
        """From multidicts (aiohttp's ``request.query`` and ``await request.post()``), in order."""
        pairs: list[tuple[str, str]] = []
        for source in sources:
            for name, value in source.items():  # a multidict's items() holds every repeated value
                if isinstance(value, str):
                    pairs.append((name, value))
                elif isinstance(value, bytes | bytearray):
                    pairs.append((name, bytes(value).decode("utf-8", "replace")))
                # a file upload (multipart) is no Subsonic parameter: ignored
        return cls(pairs)

    def __contains__(self, name: str) -> bool:
        return bool(self.values.get(name))

    def str(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name`` (``default`` when absent)."""
        got = self.values.get(name)
        return got[0] if got else default

    def required(self, name: str) -> str:
        """The first value of ``name``; code 10 when it is absent or empty."""
        value = self.str(name)
        if value is None or not value.strip():
            raise SubsonicError(Code.MISSING_PARAMETER, f"Required parameter '{name}' is missing")
        return value

    def all(self, name: str) -> list[str]:
        """Every value of ``name`` (empty ones left out), in order."""
        return [v for v in self.values.get(name, ()) if v.strip()]

    def bool(self, name: str, default: bool) -> bool:
        value = self.str(name)
        if value is None or not value.strip():
            return default
        return parse_bool(value, name)

    def int(self, name: str, default: int | None, lo: int, hi: int) -> int:
        """An integer in ``[lo, hi]``; ``default`` None makes it required (code 10); a value that is no
        integer or out of range: code 0 naming the parameter."""
        raw = self.str(name)
        if raw is None or not raw.strip():
            if default is None:
                raise SubsonicError(Code.MISSING_PARAMETER, f"Required parameter '{name}' is missing")
            return default
        raw = raw.strip()
        if not _INTEGER.fullmatch(raw):
            raise SubsonicError(Code.GENERIC, f"Invalid value for parameter {name}: expected an integer, "
                                              f"got {raw[:40]!r}")
        value = int(raw)
        if not lo <= value <= hi:
            raise SubsonicError(Code.GENERIC, f"Invalid value for parameter {name}: must be between {lo} and {hi}")
        return value

    def opt_int(self, name: str, lo: int, hi: int) -> int | None:
        """An optional integer (None when absent), else as :meth:`int`."""
        raw = self.str(name)
        if raw is None or not raw.strip():
            return None
        return self.int(name, 0, lo, hi)

    def ints(self, name: str, lo: int, hi: int) -> list[int]:
        """Every value of ``name`` as an integer in ``[lo, hi]``."""
        out = []
        for raw in self.all(name):
            out.append(Params([(name, raw)]).int(name, None, lo, hi))
        return out


def parse_version(raw: str | None) -> tuple[int, ...] | None:
    """``"1.16.1"`` -> (1, 16, 1); None for a missing or unreadable version (tolerated: real clients
    send odd ones)."""
    if not raw:
        return None
    parts = raw.strip().split(".")
    if not parts or not all(p.isdigit() and len(p) <= 6 for p in parts):
        return None
    return tuple(int(p) for p in parts)


def check_version(raw: str | None, server: str) -> None:
    """Code 30 when the client speaks a newer major protocol than ours, 20 when an older one (the
    Subsonic rule is on the major version; newer minor versions are accepted: OpenSubsonic clients
    announce them freely)."""
    client = parse_version(raw)
    if client is None:
        return
    ours = parse_version(server) or (1,)
    if client[0] > ours[0]:
        raise SubsonicError(Code.SERVER_TOO_OLD)
    if client[0] < ours[0]:
        raise SubsonicError(Code.CLIENT_TOO_OLD)
