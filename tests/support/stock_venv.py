"""A virtualenv with only ``confluent-kafka[avro,schemaregistry]`` (the version this project runs), cached
under ``~/.cache/playlog/stock-consumer-<version>``: what a downstream service would install. Built once
(about a minute, from PyPI) into a temporary folder, then moved into place, so a half-built one is
never used."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

CHECK = ("import confluent_kafka, importlib.util; "
         "from confluent_kafka.schema_registry.avro import AvroDeserializer; "
         "assert importlib.util.find_spec('playlog') is None and importlib.util.find_spec('schemas') is None")


def stock_python() -> Path:
    version = metadata.version("confluent-kafka")
    home = Path.home() / ".cache" / "playlog" / f"stock-consumer-{version}"
    python = home / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", CHECK], cwd="/", capture_output=True).returncode == 0:
        return python
    building = home.with_name(home.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(building)], check=True, capture_output=True, timeout=300)
    pip = subprocess.run([str(building / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          f"confluent-kafka[avro,schemaregistry]=={version}"], capture_output=True, text=True,
                         timeout=600)
    assert pip.returncode == 0, f"pip install confluent-kafka[avro,schemaregistry]=={version} failed:\n{pip.stderr}"
    building.rename(home)  # its python finds its packages from where it is (pyvenv.cfg); pip runs as -m pip
    check = subprocess.run([str(python), "-c", CHECK], cwd="/", capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    return python
