"""Item-item collaborative filtering: cosine similarity of tracks over their listener sets.

For tracks a and b with ``n_a`` and ``n_b`` distinct listeners of which ``c`` listened to both,
``sim(a, b) = c / sqrt(n_a * n_b)`` (cosine of the binary listener vectors, i.e. co-occurrence
normalized by both popularities). All counts are integers, so they do not depend on the order in
which listeners or their tracks are given; the neighbours of a track are ordered by the *exact*
rational ``c^2 / (n_a n_b)`` (floats only pre-select, then candidates near the cut are compared by
integer cross-multiplication), ties by id. The float score in the output is ``c / sqrt(n_a n_b)``.

Inputs: either listener -> tracks (:func:`item_item`, e.g. ``taste.evolve_listener`` states) or the
co-occurrence counts and listener counts the stream folds already keep (:func:`from_cooccurrence`,
``taste.evolve_pairs`` states + distinct listeners per track).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence

Neighbours = dict[str, list[tuple[str, float]]]

_MARGIN = 1e-9  # relative float error far above a few ulps: candidates within it are compared exactly


def _exact_top(
    a: str, counts: Mapping[str, int], listeners: Mapping[str, int], k: int
) -> list[tuple[str, float]]:
    na = listeners[a]
    scored = [(c / math.sqrt(na * listeners[b]), b, c) for b, c in counts.items() if b != a and c > 0]
    if not scored:
        return []
    scored.sort(key=lambda x: (-x[0], x[1]))
    if len(scored) > k:
        cut = scored[k - 1][0] * (1 - _MARGIN)
        scored = [x for x in scored if x[0] >= cut]

    def cmp(x: tuple[float, str, int], y: tuple[float, str, int]) -> int:
        # x before y when c_x^2 / n_x > c_y^2 / n_y (n_a is common): c_x^2 n_y vs c_y^2 n_x
        lhs, rhs = x[2] * x[2] * listeners[y[1]], y[2] * y[2] * listeners[x[1]]
        if lhs != rhs:
            return -1 if lhs > rhs else 1
        return -1 if x[1] < y[1] else (1 if x[1] > y[1] else 0)

    # floats order all but near-ties correctly; an exact stable pass over the pre-sorted list fixes those
    scored.sort(key=functools.cmp_to_key(cmp))
    return [(b, s) for s, b, _c in scored[:k]]


def cooccurrence(
    listener_tracks: Mapping[str, Iterable[str]],
) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """(track -> {other: listeners of both}, track -> listeners) from listener -> tracks."""
    pairs: dict[str, dict[str, int]] = {}
    listeners: dict[str, int] = {}
    for tracks in listener_tracks.values():
        items = sorted(set(tracks))
        for t in items:
            listeners[t] = listeners.get(t, 0) + 1
        for i, a in enumerate(items):
            row = pairs.setdefault(a, {})
            for b in items[i + 1 :]:
                row[b] = row.get(b, 0) + 1
    # symmetric fill (only a < b was counted)
    full: dict[str, dict[str, int]] = {t: {} for t in listeners}
    for a, row in pairs.items():
        fa = full[a]
        for b, c in row.items():
            fa[b] = c
            full[b][a] = c
    return full, listeners


def from_cooccurrence(
    counts: Mapping[str, Mapping[str, int]], listeners: Mapping[str, int], k: int = 50
) -> Neighbours:
    """Top-``k`` neighbours per track from co-occurrence counts and per-track listener counts."""
    out: Neighbours = {}
    for a in sorted(counts):
        if listeners.get(a, 0) <= 0:
            continue
        row = {b: c for b, c in counts[a].items() if listeners.get(b, 0) > 0}
        top = _exact_top(a, row, listeners, k)
        if top:
            out[a] = top
    return out


def item_item(listener_tracks: Mapping[str, Iterable[str]], k: int = 50) -> Neighbours:
    """Top-``k`` cosine neighbours of every track from listener -> tracks (repeats ignored)."""
    counts, listeners = cooccurrence(listener_tracks)
    return from_cooccurrence(counts, listeners, k)


def similar(
    neighbours: Mapping[str, Sequence[tuple[str, float]]], track_id: str, n: int | None = None
) -> list[str]:
    row = neighbours.get(track_id) or []
    return [b for b, _ in (row if n is None else row[:n])]
