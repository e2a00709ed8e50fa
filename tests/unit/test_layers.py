"""The house rules, checked: imports run one way (import-linter's contracts in pyproject.toml),
and no module but ``core/settings.py`` reads a ``PLAYLOG_*`` variable from the environment."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "schemas", "topics", "processors", "worker", "sinks", "batch", "replay", "playback", "ingest",
            "devstack", "demo", "benchmarks", "playlog")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _copy_tree(dst: Path) -> Path:
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, dst / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", dst / "pyproject.toml")
    return dst


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)})


def test_the_layer_contracts_hold(tmp_path: Path) -> None:
    r = _lint(_copy_tree(tmp_path / "tree"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "2 kept, 0 broken" in r.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path / "tree")
    fold = root / "processors" / "plays.py"
    fold.write_text(fold.read_text() + "\nfrom worker import app as _upward  # noqa: E402,F401\n")
    r = _lint(root)
    assert r.returncode != 0, r.stdout[-2000:]
    assert "BROKEN" in r.stdout and "processors.plays -> worker.app" in r.stdout, r.stdout[-3000:]


def test_a_fold_importing_the_broker_client_breaks_the_purity_contract(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path / "tree")
    fold = root / "processors" / "royalties.py"
    fold.write_text(fold.read_text() + "\nimport confluent_kafka as _io  # noqa: E402,F401\n")
    r = _lint(root)
    assert r.returncode != 0
    assert "the folds are pure" in r.stdout and "BROKEN" in r.stdout, r.stdout[-3000:]


_READS = re.compile(r"""(os\.environ(\.get)?\s*[\[(]\s*f?["']PLAYLOG_|os\.getenv\(\s*f?["']PLAYLOG_)""")


def test_only_the_settings_module_reads_playlog_variables() -> None:
    offenders = []
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            if path == REPO / "core" / "settings.py":
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if _READS.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not offenders, offenders


def test_the_settings_round_trip_through_a_child_environment() -> None:
    from core.settings import load

    env = {"PLAYLOG_BOOTSTRAP_SERVERS": "10.0.0.1:9092,10.0.0.2:9092", "PLAYLOG_DATA_DIR": "/srv/playlog",
           "PLAYLOG_SIGNING_KEYS": "k2:s2,k1:s1", "PLAYLOG_WORKER_URLS": "http://a:1,http://b:2",
           "PLAYLOG_KAFKA_CONTROLLER_PORT": "19093", "PLAYLOG_CDN_CACHE_BYTES": "1024", "PLAYLOG_API_PORT": "1"}
    s = load(env)
    assert s.signing_keys == {"k2": "s2", "k1": "s1"} and list(s.signing_keys)[0] == "k2"
    assert s.worker_urls == ("http://a:1", "http://b:2") and s.controller_port == 19093
    again = load(s.to_env({}))
    assert again == s
    assert s.to_env({})["PLAYLOG_KAFKA_CONTROLLER_PORT"] == "19093"


def test_a_bad_number_names_its_variable() -> None:
    import pytest

    from core.settings import load

    with pytest.raises(ValueError, match="PLAYLOG_API_PORT must be an integer"):
        load({"PLAYLOG_API_PORT": "eighty"})
    with pytest.raises(ValueError, match="PLAYLOG_CDN_CACHE_BYTES must be >= 0"):
        load({"PLAYLOG_CDN_CACHE_BYTES": "-1"})
