"""Hypothesis strategies for valid events of every type, generated from the Avro schemas."""

from __future__ import annotations

from hypothesis import strategies as st

from schemas.codec import default_codec
from schemas.invariants import (
    CODECS,
    DEVICE_TYPES,
    DIRECTIONS,
    FOLLOW_TARGET_TYPES,
    LIBRARY_ITEM_TYPES,
    PRODUCTS,
    REPEAT_STATES,
)

COUNTRIES = ["DE", "FR", "SE", "US", "JP", "BR", "GB"]
ms = st.integers(0, 4_102_444_800_000)  # up to 2100
text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)
nonneg = st.integers(0, 2**31 - 1)


@st.composite
def shares(draw: st.DrawFn) -> list[dict]:
    n = draw(st.integers(1, 4))
    holders = draw(st.lists(ids, min_size=n, max_size=n, unique=True))
    cuts = sorted(draw(st.lists(st.integers(0, 1_000_000), min_size=n - 1, max_size=n - 1)))
    bounds = [0, *cuts, 1_000_000]
    return [{"rightsholder_id": h, "share_ppm": bounds[i + 1] - bounds[i]} for i, h in enumerate(holders)]


OVERRIDES = {
    "event_id": ids,
    "occurred_at": ms,
    "product": st.sampled_from(sorted(PRODUCTS)),
    "country": st.sampled_from(COUNTRIES),
    "territory": st.sampled_from(COUNTRIES),
    "territories": st.lists(st.sampled_from([*COUNTRIES, "*"]), min_size=1, max_size=3),
    "codec": st.sampled_from(sorted(CODECS)),
    "device_type": st.sampled_from(sorted(DEVICE_TYPES)),
    "direction": st.sampled_from(sorted(DIRECTIONS)),
    "repeat": st.sampled_from(sorted(REPEAT_STATES)),
    "item_type": st.sampled_from(sorted(LIBRARY_ITEM_TYPES)),
    "target_type": st.sampled_from(sorted(FOLLOW_TARGET_TYPES)),
    "volume_percent": st.integers(0, 100),
    "period": st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(2000, 2099), st.integers(1, 12)),
    "release_date": st.builds(lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}", st.integers(1950, 2099), st.integers(1, 12), st.integers(1, 28)),
    "rightsholders": shares(),
}


def _for_type(t: object) -> st.SearchStrategy:
    if isinstance(t, list):
        inner = [x for x in t if x != "null"][0]
        return st.one_of(st.none(), _for_type(inner))
    if isinstance(t, dict):
        if t.get("logicalType") == "timestamp-millis":
            return ms
        if t["type"] == "array":
            return st.lists(_for_type(t["items"]), max_size=4)
        if t["type"] == "record":
            return st.fixed_dictionaries({f["name"]: _for_type(f["type"]) for f in t["fields"]})
        return _for_type(t["type"])
    return {
        "string": text,
        "int": nonneg,
        "long": st.integers(0, 2**63 - 1),
        "boolean": st.booleans(),
        "double": st.floats(allow_nan=False, allow_infinity=False, width=64),
    }[t]


def event_strategy(event_type: str) -> st.SearchStrategy[dict]:
    """Valid JSON-form events of one type."""
    schema = default_codec().registry.latest(event_type).schema
    fields = {f["name"]: OVERRIDES.get(f["name"], _for_type(f["type"])) for f in schema["fields"]}

    def fix(obj: dict) -> dict:
        from core.timefmt import format_ts

        out = {"type": event_type}
        for f in schema["fields"]:
            v = obj[f["name"]]
            t = f["type"]
            is_ts = (isinstance(t, dict) and t.get("logicalType")) or (
                isinstance(t, list) and any(isinstance(x, dict) and x.get("logicalType") for x in t))
            out[f["name"]] = format_ts(v) if is_ts and v is not None else v
        if event_type == "rights.changed" and obj["valid_from"] is not None and obj["valid_to"] is not None:
            lo, hi = sorted((obj["valid_from"], obj["valid_to"]))
            out["valid_from"], out["valid_to"] = format_ts(lo), format_ts(hi)
        return out

    return st.fixed_dictionaries(fields).map(fix)


def any_event() -> st.SearchStrategy[dict]:
    return st.sampled_from(default_codec().event_types).flatmap(event_strategy)
