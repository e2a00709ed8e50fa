"""The demo's figures (pure): royalty pools it declares, the periods a run spans, the statement
checked against its pools, Prometheus text parsed into samples and histogram quantiles, and the
summary printed at the end."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable

import click

POOL_BASE_MICROS = 1_000_000_000  # 1,000 units of currency per (period, country, product), times a factor


def pool_amount(country: str, product: str) -> int:
    """A deterministic pool per (country, product): premium pools are larger."""
    factor = 3 + sum(map(ord, country)) % 5
    return POOL_BASE_MICROS * factor * (4 if product == "premium" else 1) + 123_457  # odd micros: rounding shows


def pool_events(periods: list[str], countries: list[str], at_ms: int) -> list[dict]:
    return [
        {"type": "royalty.pool_declared", "event_id": f"demo-pool-{period}-{c}-{p}", "occurred_at": at_ms,
         "period": period, "country": c, "product": p, "amount_micros": pool_amount(c, p), "currency": "EUR"}
        for period in periods for c in countries for p in ("free", "premium")
    ]


def periods_between(start_ms: int, end_ms: int) -> list[str]:
    from core.timefmt import period_of

    out = []
    t = start_ms
    while True:
        p = period_of(t)
        if p not in out:
            out.append(p)
        if t >= end_ms:
            break
        t = min(end_ms, t + 86_400_000)
    return out


# ==================================================================================================
# checks and figures


def royalty_figures(statements: dict[str, str], pools: dict[tuple[str, str, str], int]) -> dict:
    """Per (period, country, product): lines, streams, total paid vs pool; top lines; consistency."""
    from processors.statement import parse_csv

    groups: dict[tuple[str, str, str], dict] = {}
    lines = []
    for text in statements.values():
        for ln in parse_csv(text):
            lines.append(ln)
            g = groups.setdefault((ln.period, ln.country, ln.product), {"lines": 0, "paid": 0, "track_streams": {}})
            g["lines"] += 1
            g["paid"] += ln.amount_micros
            g["track_streams"][ln.track_id] = max(g["track_streams"].get(ln.track_id, 0), ln.streams)
    out_groups = []
    consistent = True
    for key in sorted(groups):
        g = groups[key]
        pool = pools.get(key, 0)
        ok = g["paid"] == pool
        consistent &= ok
        out_groups.append({"period": key[0], "country": key[1], "product": key[2], "lines": g["lines"],
                           "paid_micros": g["paid"], "pool_micros": pool, "sums_to_pool": ok})
    by_holder: dict[str, int] = {}
    by_track: dict[str, int] = {}
    for ln in lines:
        by_holder[ln.rightsholder_id] = by_holder.get(ln.rightsholder_id, 0) + ln.amount_micros
    streams_total = 0
    for g in groups.values():
        for t, s in g["track_streams"].items():
            by_track[t] = by_track.get(t, 0) + s
            streams_total += s
    top = sorted(lines, key=lambda ln: (-ln.amount_micros, ln.period, ln.country, ln.product, ln.rightsholder_id))
    return {
        "lines": len(lines),
        "groups": out_groups,
        "consistent": consistent and bool(lines),
        "paid_micros": sum(ln.amount_micros for ln in lines),
        "pools_with_streams_micros": sum(g["pool_micros"] for g in out_groups),
        "pools_declared_micros": sum(pools.values()),
        "streams": streams_total,
        "streams_by_track": dict(sorted(by_track.items(), key=lambda kv: (-kv[1], kv[0]))),
        "payout_by_rightsholder": dict(sorted(by_holder.items(), key=lambda kv: (-kv[1], kv[0]))),
        "top_lines": [ln._asdict() for ln in top[:10]],
    }


_METRIC = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+([-+0-9.eEinfNa]+)$")


def parse_prometheus(text: str) -> dict[str, float]:
    """``name{labels}`` -> value for every sample line (labels kept verbatim)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC.match(line.strip())
        if m:
            with contextlib.suppress(ValueError):
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def histogram_quantiles(samples: dict[str, float], metric: str, by: str,
                        qs: tuple[float, ...] = (0.5, 0.95)) -> dict[str, dict[str, float]]:
    """Per value of label ``by``: the count and, for each quantile, the upper bound (ms) of the
    bucket it falls in, from a Prometheus histogram's cumulative ``_bucket`` samples."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    for key, value in samples.items():
        if not key.startswith(metric + "_bucket{"):
            continue
        labels = dict(_LABEL.findall(key))
        le = labels.get("le")
        if le is None or by not in labels:
            continue
        bound = math.inf if le == "+Inf" else float(le)
        buckets.setdefault(labels[by], []).append((bound, value))
    out: dict[str, dict[str, float]] = {}
    for name, bs in sorted(buckets.items()):
        agg: dict[float, float] = {}
        for bound, v in bs:  # several series (methods) may share a route: add them up
            agg[bound] = agg.get(bound, 0.0) + v
        ordered = sorted(agg.items())
        total = ordered[-1][1] if ordered else 0.0
        if total <= 0:
            continue
        row: dict[str, float] = {"n": int(total)}
        for q in qs:
            bound = next(b for b, c in ordered if c >= q * total)
            row[f"p{int(q * 100)}_le"] = bound * 1000 if math.isfinite(bound) else math.inf
        out[name] = row
    return out


def print_summary(s: dict, say: Callable[[str], None] = click.echo) -> None:
    sim = s["simulation"]
    r = s["royalties"]
    say("")
    say("=" * 72)
    say(f"playlog demo summary ({s['seconds']:.0f}s simulated at {s['speed']:g}x, {s['listeners']} listeners)")
    say("=" * 72)
    say(f"events produced   {sim['events']:,} listening events, {sim['events_per_s']:,.0f} events/s")
    say(f"plays             {sim['plays']:,} plays: {sim['completed']:,} completed, {sim['skipped']:,} skipped"
        f"; {r['streams']:,} royalty streams")
    say(f"playback          rebuffer ratio {sim['rebuffer_ratio']:.2%} ({sim['rebuffers']:,} stalls), "
        f"{sim['segments']:,} segments fetched ({sim['status_206']:,} answered 206), {sim['prefetches']:,} prefetches, "
        f"{sim['offline_plays']:,} offline plays uploaded late, {sim['blocked']:,} plays refused (rights)")
    lat = sim.get("latency_ms", {})
    if lat:
        say("API, as listeners saw it (incl. the simulator's own queueing)\n                  " + ", ".join(
            f"{name} p50 {v['p50']:.1f} ms / p95 {v['p95']:.1f} ms" for name, v in lat.items() if v.get("n")))
    server = s.get("api", {}).get("server_latency_ms", {})
    if server:
        shown = {k: v for k, v in server.items() if k.startswith("/v1/")}
        say("API server side   " + ", ".join(
            f"{k} p50 <= {v['p50_le']:g} ms / p95 <= {v['p95_le']:g} ms" for k, v in shown.items()))
    say(f"event->view lag   max {s['lag']['max_records']:,} records behind; drained in {s['lag']['drain_s']}s "
        f"after the load stopped (final lag {s['lag']['final_lag']})")
    say("views             " + ", ".join(f"{k} {v:,}" for k, v in s["views"].items()))
    say(f"royalties         {r['lines']} statement lines; paid {r['paid_micros'] / 1e6:,.6f} of pools "
        f"{r['pools_with_streams_micros'] / 1e6:,.6f} (groups with streams) -> "
        f"{'every (period, country, product) sums exactly to its pool' if r['consistent'] else 'MISMATCH'}")
    for ln in r["top_lines"][:5]:
        say(f"    {ln['period']} {ln['country']} {ln['product']:<7} {ln['rightsholder_id']:<28} {ln['track_id']:<18} "
            f"{ln['streams']:>5} streams {ln['amount_micros'] / 1e6:>14,.6f}")
    rf = s["range_fetch"]
    say(f"signed segment    {rf['url']}")
    say(f"                  Range bytes=0-4095 -> {rf['status']} {rf['content_range']} ({rf['bytes']} bytes, {rf['content_type']})")
    c = s["cdn"]
    say(f"CDN               {c['bytes_served'] / 1e6:,.1f} MB served, cache hit ratio {c['hit_ratio']:.1%} "
        f"({c['hits']:,} hits / {c['misses']:,} misses)")
    if s.get("report"):
        say(f"report            {s['report']}")
    say(f"wall time         {s['wall_s']}s")
