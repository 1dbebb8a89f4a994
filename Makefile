# One command per task: `make run` serves ChargeLens, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
HOST ?= 127.0.0.1
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint format bench chromium java deps test-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.deps: requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.test-deps: requirements-test.txt $(VENV)/.deps
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

deps: $(VENV)/.deps
test-deps: $(VENV)/.test-deps chromium java

# Debian's Chromium for the browser tests (Playwright's own browser download is not used).
chromium:
	@if [ -x /usr/bin/chromium ]; then exit 0; fi; \
	if command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium fonts-liberation >/dev/null; \
	else echo "Install Chromium at /usr/bin/chromium for the browser tests." >&2; exit 1; fi

# Debian's Java 17 for Spark (the scale-out tests and bench), only when no java is on the PATH.
java:
	@if command -v java >/dev/null; then exit 0; fi; \
	if command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	else echo "Install Java 17 (openjdk-17-jre-headless) for the Spark tests." >&2; exit 1; fi

run: deps
	$(PY) -m core demo --if-empty
	$(PY) -m core serve --host $(HOST) --port $(PORT)

lint: $(VENV)/.test-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.test-deps
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: test-deps lint
	$(PY) -m pytest -q

bench: $(VENV)/.test-deps java
	$(PY) bench/bench_import.py
	$(PY) bench/bench_detect.py
	$(PY) bench/quality.py
	$(PY) bench/bench_locations.py
	$(PY) bench/bench_costs.py
	$(PY) bench/bench_pages.py
	$(PY) bench/bench_spark.py

clean:
	rm -rf $(VENV) tests/artifacts .pytest_cache .ruff_cache
