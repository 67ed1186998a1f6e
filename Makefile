# CTIP Atlas — two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast browser-deps geo reference bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## Seed the embedded store on first run (demo data only when it is empty), then serve on 127.0.0.1:8050.
run: install
	$(BIN)/ctip init --seed-demo-if-empty
	$(BIN)/ctip serve

## Headless Chromium + ChromeDriver for the browser tests (Debian packages; installed when missing and root).
browser-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "chromium/chromedriver missing and not root: browser tests will skip (they fail when CI=true)"; fi

test: install browser-deps
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not browser"

## Rebuild the shipped boundary layers and reference tables from ../shared (build-time only).
geo: install
	$(BIN)/python -m geo.build

reference: install
	$(BIN)/python -m data.reference.build_reference

bench: install
	$(BIN)/python benchmarks/bench_callbacks.py
	$(BIN)/python benchmarks/bench_release.py

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache build *.egg-info
