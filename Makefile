# playlog: the two commands that do all setup on a fresh machine are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: setup venv kafka-jars clickhouse chromium demo up test conformance test-unit soak lint bench clean

setup: venv kafka-jars clickhouse

venv: $(STAMP)
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ".[all]"
	@rm -f $(VENV)/.installed-* && touch $@

# Apache Kafka (KRaft) jars from Maven Central, copied once into ~/.cache/playlog (devstack/kafka/pom.xml)
kafka-jars: venv
	@command -v java >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq openjdk-17-jre-headless; }
	@command -v mvn >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq maven; }
	$(PY) -c "from devstack.kafka import ensure_jars; print('kafka jars:', ensure_jars())"

# Debian's clickhouse-server, for the ClickHouse sink tests (tests start their own private server)
clickhouse:
	@command -v clickhouse-server >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq clickhouse-server clickhouse-client; }

# Debian's Chromium, for the HTML report check
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

demo: setup
	$(VENV)/bin/playlog demo

up: setup
	$(VENV)/bin/playlog up

test: setup chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -q

# the chaos suite, longer: more seeds, longer schedules (make test runs one seed of 10 hits)
SOAK_SEEDS ?= 1,2,3,4,5,6,7,8
SOAK_KILLS ?= 20
soak: setup
	PLAYLOG_CHAOS_SEEDS=$(SOAK_SEEDS) PLAYLOG_CHAOS_KILLS=$(SOAK_KILLS) $(VENV)/bin/pytest -q tests/integration/test_chaos.py

# the Spotify Web API conformance report (README: Spotify Web API fidelity)
conformance: venv
	PLAYLOG_CONFORMANCE_REPORT=build/conformance.md $(VENV)/bin/pytest -q tests/unit/test_spotify_conformance.py
	@echo "report: build/conformance.md"

test-unit: venv
	$(VENV)/bin/pytest -q tests/unit

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

bench: setup
	$(VENV)/bin/playlog bench all

clean:
	rm -rf .playlog build *.egg-info .pytest_cache .ruff_cache
