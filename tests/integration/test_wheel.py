"""A wheel that works: built from the repository, installed (not editable) into a fresh
virtualenv, its ``playlog`` runs the verbs that need package data (analyst SQL, the broker's
Maven pom, the Avro schemas and topic catalog) from site-packages, never from this checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(cmd: list, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900, **kw)
    assert r.returncode == 0, f"{cmd}: {r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


def test_the_wheel_installs_and_its_playlog_works_from_site_packages(tmp_path: Path) -> None:
    # build from a copy: setuptools' build/ dir in the checkout could carry files deleted since
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", ".playlog", "build", "*.egg-info",
                                                                "__pycache__", ".pytest_cache", ".ruff_cache",
                                                                ".hypothesis", "tests"))
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, src], cwd=tmp_path)
    wheel = next(dist.glob("playlog-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for data in ("sinks/sql/duckdb/top_tracks_per_country_day.sql", "sinks/sql/clickhouse/rightsholder_totals.sql",
                 "devstack/kafka/pom.xml", "schemas/registry.json", "topics/topic_catalog.json",
                 "schemas/avro/play.started.avsc"):
        assert data in names, f"{data} missing from {wheel.name}"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(n.startswith("tests/") for n in names)

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    py = venv / "bin" / "python"
    # the third-party dependencies come from this interpreter's site-packages (no network here);
    # the project itself only from the wheel: this checkout is neither on the path nor the cwd
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel])
    where = _run([py, "-c", "import playlog, sinks, devstack; print(playlog.__file__, sinks.__file__, devstack.__file__)"],
                 cwd=tmp_path).stdout
    assert str(REPO) not in where and str(site) in where, where

    playlog = venv / "bin" / "playlog"
    listed = _run([playlog, "sink", "query"], cwd=tmp_path).stdout
    for q in ("top_tracks_per_country_day", "skip_rate_by_context", "rightsholder_totals",
              "listening_hours_per_product"):
        assert q in listed, listed
    assert "0.1.0" in _run([py, "-m", "playlog", "--version"], cwd=tmp_path).stdout
    assert "play.started" in _run([playlog, "schemas", "list"], cwd=tmp_path).stdout
    pom = _run([py, "-c", "from devstack.kafka import POM; print(POM, POM.exists())"], cwd=tmp_path).stdout
    assert pom.strip().endswith("True") and str(site) in pom, pom
    described = _run([playlog, "topics", "describe", "--help"], cwd=tmp_path).stdout
    assert "Usage" in described
