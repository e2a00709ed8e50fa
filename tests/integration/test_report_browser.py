"""The demo's HTML report in a real headless browser (Debian's chromium): it loads with no JS error
or console message, fetches nothing, and draws every chart; a screenshot lands in the test's tmp dir."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from demo.report import write_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"  # `make test` installs Debian's chromium
CHARTS = ("events-per-s", "lag", "cdn-hit-ratio", "top-tracks", "payouts")


def _summary() -> dict:
    timeline = [{"t": t + 0.5, "events": 300 * t, "events_per_s": 250.0 + 40 * (t % 3), "lag": 4000 - 300 * t,
                 "cdn_hit_ratio": min(0.99, 0.5 + t / 30), "cdn_bytes": 10_000_000 * t} for t in range(12)]
    return {
        "data_dir": "/tmp/x/demo", "seconds": 15, "speed": 30, "listeners": 150, "wall_s": 80.1, "via": "api",
        "simulation": {"events": 3600, "events_per_s": 240.0, "plays": 500, "completed": 300, "skipped": 200,
                       "offline_plays": 12, "rebuffers": 9, "rebuffer_ratio": 0.012, "segments": 2100,
                       "status_206": 2100, "prefetches": 300, "blocked": 40,
                       "latency_ms": {"home": {"n": 200, "p50": 9.5, "p95": 80.1, "p99": 120.0, "max": 130.0},
                                      "search": {"n": 60, "p50": 8.0, "p95": 50.0, "p99": 70.0, "max": 71.0}}},
        "plays_by_track": {"trk-7-0000000": 260, "trk-7-0000001": 140, "trk-7-0000002": 100},
        "lag": {"drain_s": 1.9, "final_lag": 0, "max_records": 4000},
        "royalties": {
            "lines": 3, "streams": 380, "consistent": True, "paid_micros": 9_000_123_457,
            "pools_with_streams_micros": 9_000_123_457, "pools_declared_micros": 12_000_000_000,
            "streams_by_track": {"trk-7-0000000": 200, "trk-7-0000001": 110, "trk-7-0000002": 70},
            "payout_by_rightsholder": {"rh-lbl-<&>\"0007": 6_000_000_000, "rh-pub-art-7-000001": 3_000_123_457},
            "groups": [{"period": "2026-11", "country": "DE", "product": "premium", "lines": 3,
                        "paid_micros": 9_000_123_457, "pool_micros": 9_000_123_457, "sums_to_pool": True}],
            "top_lines": [],
        },
        "range_fetch": {"url": "http://127.0.0.1:8701/audio/f/0?exp=1&kid=dev1&sig=x", "status": 206,
                        "content_range": "bytes 0-4095/127970", "bytes": 4096, "content_type": "audio/aac"},
        "cdn": {"bytes_served": 300_000_000, "hits": 900, "misses": 30, "hit_ratio": 0.968},
        "timeline": timeline,
    }


def _chromium(page: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr", "--v=0", "--window-size=1360,2200",
         *args, page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )


def _console(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]


def test_report_loads_and_draws_its_charts(tmp_path: Path) -> None:
    page = write_report(_summary(), tmp_path / "report.html")
    text = page.read_text()
    # self-contained: nothing to fetch (the network is closed)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<&>" not in text  # labels are escaped

    dom = _chromium(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console(dom.stderr) == []
    root = re.search(r"<html[^>]*>", dom.stdout).group(0)
    assert 'data-rendered="1"' in root, root  # the inline script ran to its end
    assert 'data-js-errors="0"' in root, root
    assert f'data-charts="{len(CHARTS)}"' in root, root
    for chart in CHARTS:
        m = re.search(rf'<svg[^>]*id="{chart}"[^>]*>', dom.stdout)
        assert m, chart
        tag = m.group(0)
        assert 'data-drawn="1"' in tag, tag  # laid out with a non-empty box
        marks = int(re.search(r'data-marks="(\d+)"', tag).group(1))
        assert marks > 0, tag
    assert re.search(r'id="status">5 charts, \d+ marks drawn<', dom.stdout)

    shot = tmp_path / "report.png"
    run = _chromium(page, tmp_path, f"--screenshot={shot}")
    assert run.returncode == 0, run.stderr[-2000:]
    assert _console(run.stderr) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_the_console_check_catches_a_broken_page(tmp_path: Path) -> None:
    """The same harness on a page whose script throws: the error is seen (the check can fail)."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><script>null.x = 1;</script></body></html>")
    dom = _chromium(page, tmp_path, "--dump-dom")
    assert any("Uncaught" in ln for ln in _console(dom.stderr)), dom.stderr[-2000:]
