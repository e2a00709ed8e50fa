"""The demo's HTML report: one self-contained file (inline SVG charts drawn here, inline CSS and a
few lines of inline JS), so it opens offline in any browser with no fetch at all.

Charts: events/s and the worker's lag over the run, the CDN's cache hit ratio over the run, plays
and royalty streams of the top tracks, payouts per rightsholder; tables of the headline figures
and of every (period, country, product) with its paid total against its pool.

``render(summary)`` is pure (summary dict in, HTML text out); ``write_report`` writes it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

WIDTH, HEIGHT = 640, 220
PAD_L, PAD_R, PAD_T, PAD_B = 64, 16, 16, 36
COLORS = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed")


def _esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def nice_max(v: float) -> float:
    """A round axis maximum >= v (1, 2, 2.5, 5 x 10^k)."""
    if v <= 0 or not math.isfinite(v):
        return 1.0
    k = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if m * k >= v:
            return m * k
    return 10 * k


def _fmt(v: float) -> str:
    if abs(v) >= 1e6:
        return f"{v / 1e6:.1f}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:.1f}k"
    if v == int(v):
        return str(int(v))
    return f"{v:.2f}"


def line_chart(chart_id: str, title: str, series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
               x_label: str = "seconds", y_max: float | None = None, y_fmt=_fmt) -> str:
    """An SVG line chart of one or more series of (x, y) points."""
    pts = [p for _, s in series for p in s]
    xmax = max((x for x, _ in pts), default=1.0) or 1.0
    ymax = y_max if y_max is not None else nice_max(max((y for _, y in pts), default=1.0))
    w, h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def sx(x: float) -> float:
        return PAD_L + w * x / xmax

    def sy(y: float) -> float:
        return PAD_T + h - h * min(y, ymax) / ymax

    out = [f'<svg class="chart line" id="{_esc(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
           f'height="{HEIGHT}" role="img" aria-label="{_esc(title)}" data-points="{len(pts)}">']
    out.append(f"<title>{_esc(title)}</title>")
    for i in range(5):  # grid and y labels
        y = ymax * i / 4
        out.append(f'<line class="grid" x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{sy(y):.1f}" y2="{sy(y):.1f}"/>')
        out.append(f'<text class="tick" x="{PAD_L - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{_esc(y_fmt(y))}</text>')
    for i in range(5):
        x = xmax * i / 4
        out.append(f'<text class="tick" x="{sx(x):.1f}" y="{HEIGHT - PAD_B + 16}" text-anchor="middle">{_esc(_fmt(round(x, 1)))}</text>')
    out.append(f'<text class="axis" x="{PAD_L + w / 2:.1f}" y="{HEIGHT - 4}" text-anchor="middle">{_esc(x_label)}</text>')
    for k, (name, s) in enumerate(series):
        if not s:
            continue
        color = COLORS[k % len(COLORS)]
        d = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(s))
        out.append(f'<path class="series" data-series="{_esc(name)}" d="{d}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in s:
            out.append(f'<circle class="pt" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{color}">'
                       f"<title>{_esc(name)} at {x:.1f}s: {_esc(y_fmt(y))}</title></circle>")
        out.append(f'<text class="legend" x="{PAD_L + 8 + 150 * k}" y="{PAD_T + 12}" fill="{color}">{_esc(name)}</text>')
    if not pts:
        out.append(f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no samples</text>')
    out.append("</svg>")
    return "".join(out)


def bar_chart(chart_id: str, title: str, items: Sequence[tuple[str, float]], value_fmt=_fmt,
              second: Sequence[float] | None = None, legend: tuple[str, str] = ("", "")) -> str:
    """A horizontal SVG bar chart (optionally a second, thinner bar per item)."""
    row = 22
    label_w = 230
    height = PAD_T + row * max(1, len(items)) + 24
    vmax = nice_max(max([v for _, v in items] + list(second or []) + [0.0]))
    w = WIDTH - label_w - 90
    out = [f'<svg class="chart bar" id="{_esc(chart_id)}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
           f'height="{height}" role="img" aria-label="{_esc(title)}" data-points="{len(items)}">']
    out.append(f"<title>{_esc(title)}</title>")
    for i, (label, v) in enumerate(items):
        y = PAD_T + i * row
        bw = w * v / vmax if vmax else 0
        out.append(f'<text class="label" x="{label_w - 6}" y="{y + 14}" text-anchor="end">{_esc(label)}</text>')
        out.append(f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{bw:.1f}" height="{12 if second else 16}" '
                   f'fill="{COLORS[0]}"><title>{_esc(label)}: {_esc(value_fmt(v))}</title></rect>')
        if second is not None:
            b2 = w * second[i] / vmax if vmax else 0
            out.append(f'<rect class="bar2" x="{label_w}" y="{y + 15}" width="{b2:.1f}" height="5" fill="{COLORS[1]}">'
                       f"<title>{_esc(label)}: {_esc(value_fmt(second[i]))}</title></rect>")
        out.append(f'<text class="value" x="{label_w + bw + 6:.1f}" y="{y + 14}">{_esc(value_fmt(v))}'
                   + (f" / {_esc(value_fmt(second[i]))}" if second is not None else "") + "</text>")
    if second is not None:
        y = height - 8
        out.append(f'<text class="legend" x="{label_w}" y="{y}" fill="{COLORS[0]}">{_esc(legend[0])}</text>')
        out.append(f'<text class="legend" x="{label_w + 140}" y="{y}" fill="{COLORS[1]}">{_esc(legend[1])}</text>')
    if not items:
        out.append(f'<text class="empty" x="{WIDTH / 2}" y="{height / 2}" text-anchor="middle">nothing to show</text>')
    out.append("</svg>")
    return "".join(out)


def _money(micros: float) -> str:
    return f"{micros / 1e6:,.2f}"


CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1340px;color:#111;padding:0 16px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(660px,1fr));gap:12px}
section.card{border:1px solid #e5e7eb;border-radius:8px;padding:12px}
svg .grid{stroke:#e5e7eb} svg text{font-size:11px;fill:#374151} svg .legend{font-weight:600}
table{border-collapse:collapse;font-size:13px} td,th{border-bottom:1px solid #e5e7eb;padding:3px 10px;text-align:left}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums} .ok{color:#059669;font-weight:600} .bad{color:#dc2626;font-weight:600}
code{font-size:12px;word-break:break-all} #status{color:#6b7280;font-size:12px}
"""

JS = """
(function(){
  var errors = [];
  window.addEventListener('error', function(e){ errors.push(String(e.message)); document.documentElement.dataset.jsErrors = errors.length; });
  var charts = document.querySelectorAll('svg.chart');
  var marks = 0;
  charts.forEach(function(svg){
    var n = svg.querySelectorAll('path.series, rect.bar, rect.bar2, circle.pt').length;
    marks += n;
    svg.dataset.marks = n;
    var box = svg.getBBox();
    svg.dataset.drawn = (box.width > 0 && box.height > 0) ? '1' : '0';
  });
  document.documentElement.dataset.charts = charts.length;
  document.documentElement.dataset.marks = marks;
  document.documentElement.dataset.jsErrors = errors.length;
  document.getElementById('status').textContent = charts.length + ' charts, ' + marks + ' marks drawn';
  document.documentElement.dataset.rendered = '1';
})();
"""


def render(summary: dict) -> str:
    """The report's HTML for a demo summary (see demo/run.py)."""
    sim = summary.get("simulation", {})
    roy = summary.get("royalties", {})
    cdn = summary.get("cdn", {})
    tl = summary.get("timeline", [])
    lag = summary.get("lag", {})
    rf = summary.get("range_fetch", {})
    charts = []
    charts.append(("Listening events per second", line_chart(
        "events-per-s", "Listening events per second",
        [("events/s", [(s["t"], s["events_per_s"]) for s in tl])])))
    charts.append(("Worker lag (records not yet processed)", line_chart(
        "lag", "Worker consumer-group lag (records)",
        [("lag", [(s["t"], s["lag"]) for s in tl if s.get("lag") is not None])])))
    charts.append(("CDN edge-cache hit ratio", line_chart(
        "cdn-hit-ratio", "CDN cache hit ratio", [("hit ratio", [(s["t"], s["cdn_hit_ratio"]) for s in tl
                                                               if s.get("cdn_hit_ratio") is not None])],
        y_max=1.0, y_fmt=lambda v: f"{v:.0%}")))
    plays = summary.get("plays_by_track", {})
    streams = roy.get("streams_by_track", {})
    top = sorted(set(plays) | set(streams), key=lambda t: (-plays.get(t, 0), -streams.get(t, 0), t))[:12]
    charts.append(("Top tracks: plays and royalty streams", bar_chart(
        "top-tracks", "Top tracks", [(t, plays.get(t, 0)) for t in top], second=[streams.get(t, 0) for t in top],
        legend=("plays", "streams"))))
    holders = list(roy.get("payout_by_rightsholder", {}).items())[:15]
    charts.append(("Payouts per rightsholder (top 15, currency units)", bar_chart(
        "payouts", "Payouts per rightsholder", [(h, v) for h, v in holders], value_fmt=_money)))

    lat = sim.get("latency_ms", {})
    figures = [
        ("wall time", f"{summary.get('wall_s', '?')} s"),
        ("simulated", f"{summary.get('seconds', 0):.0f} s at {summary.get('speed', 0):g}x, {summary.get('listeners', 0)} listeners"),
        ("listening events", f"{sim.get('events', 0):,} ({sim.get('events_per_s', 0):,.0f}/s)"),
        ("plays", f"{sim.get('plays', 0):,}: {sim.get('completed', 0):,} completed, {sim.get('skipped', 0):,} skipped, "
                  f"{sim.get('offline_plays', 0):,} offline"),
        ("royalty streams", f"{roy.get('streams', 0):,}"),
        ("rebuffer ratio", f"{sim.get('rebuffer_ratio', 0):.2%} ({sim.get('rebuffers', 0):,} stalls)"),
        ("worker lag", f"max {lag.get('max_records', 0):,} records; drained in {lag.get('drain_s', '?')} s"),
        ("CDN", f"{cdn.get('bytes_served', 0) / 1e6:,.1f} MB served, hit ratio {cdn.get('hit_ratio', 0):.1%}"),
        ("Range fetch", f"{rf.get('status')} {rf.get('content_range')}"),
    ] + [(f"{name} latency (client side)", f"p50 {v['p50']:.1f} ms, p95 {v['p95']:.1f} ms (n={v['n']})")
         for name, v in lat.items() if v.get("n")] + [
        (f"API server side {route}", f"p50 <= {v['p50_le']:g} ms, p95 <= {v['p95_le']:g} ms (n={v['n']})")
        for route, v in summary.get("api", {}).get("server_latency_ms", {}).items() if route.startswith("/v1/")]
    rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in figures)
    groups = "".join(
        f"<tr><td>{_esc(g['period'])}</td><td>{_esc(g['country'])}</td><td>{_esc(g['product'])}</td>"
        f"<td class=num>{g['lines']}</td><td class=num>{_money(g['paid_micros'])}</td>"
        f"<td class=num>{_money(g['pool_micros'])}</td>"
        f"<td class={'ok' if g['sums_to_pool'] else 'bad'}>{'exact' if g['sums_to_pool'] else 'MISMATCH'}</td></tr>"
        for g in roy.get("groups", []))
    cards = "".join(f'<section class="card"><h2>{_esc(t)}</h2>{svg}</section>' for t, svg in charts)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>playlog demo report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body>
<h1>playlog demo report</h1>
<p>State under <code>{_esc(summary.get('data_dir', ''))}</code>. <span id="status">charts not rendered (JavaScript off?)</span></p>
<table class="figures">{rows}</table>
<div class="grid2">{cards}</div>
<h2>Royalty statement: paid against pools, per (period, country, product)</h2>
<p>{roy.get('lines', 0)} statement lines; paid {_money(roy.get('paid_micros', 0))} of
{_money(roy.get('pools_with_streams_micros', 0))} in pools with streams
({_money(roy.get('pools_declared_micros', 0))} declared in all).</p>
<table class="groups"><tr><th>period</th><th>country</th><th>product</th><th class=num>lines</th>
<th class=num>paid</th><th class=num>pool</th><th></th></tr>{groups}</table>
<h2>Signed segment fetched with a Range request</h2>
<p><code>{_esc(rf.get('url', ''))}</code><br>status {_esc(rf.get('status'))}, Content-Range
<code>{_esc(rf.get('content_range'))}</code>, {_esc(rf.get('bytes'))} bytes of {_esc(rf.get('content_type'))}</p>
<script>{JS}</script>
</body></html>
"""


def write_report(summary: dict, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(summary), encoding="utf-8")
    return path
