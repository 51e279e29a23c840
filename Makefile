# One-command entry points. Each target does all of its own set-up on a fresh Debian/Ubuntu
# machine that has python3 and make: a virtual environment in .venv, the Python packages, and
# the system packages the tests need (through scripts/system-deps).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo-installed
PYTEST_ARGS ?=
# Test processes for `make test` (pytest-xdist, whole files per process: a file's fixtures and
# its real parts stay together). 0 runs everything in the one pytest process.
TEST_WORKERS ?= 2

.PHONY: help venv install test lint demo bench container clean

help:
	@echo "make demo   - set up and run the agent, simulator, broker and cloud live (Ctrl-C stops it)"
	@echo "make test   - set up and run the whole test suite (lint included)"
	@echo "make lint   - ruff and mypy --strict"
	@echo "make bench  - run the benchmarks and print JSON"
	@echo "make container - build deploy/Containerfile with buildah (no registry needed; root)"

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
		scripts/system-deps python3-venv && rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python

# Re-installs whenever pyproject.toml or the package tree changes (strict editable mode is a
# link farm, so new files need a re-install; it also lets mypy see every package).
$(STAMP): $(BIN)/python pyproject.toml $(shell find edge_agent modules simulator -name '*.py' -newer $(STAMP) 2>/dev/null)
	scripts/dev-install
	@touch $(STAMP)

install: $(STAMP)

# The demo extra (matplotlib for the plot, amqtt as a broker when mosquitto is missing); the
# test suite runs the demo too, so `make test` installs it as well.
$(DEMO_STAMP): $(STAMP)
	scripts/dev-install dev,demo
	@touch $@

lint: install
	$(BIN)/ruff check edge_agent modules simulator fleet scripts tests
	$(BIN)/ruff format --check edge_agent modules simulator fleet scripts tests
	cd $(VENV) && bin/mypy --config-file ../pyproject.toml -p edge_agent  # from .venv: see the installed link farm, not ./edge_agent
	cd scripts && MYPYPATH=. ../$(BIN)/mypy --config-file ../pyproject.toml -p edge_demo

test: $(DEMO_STAMP)
	scripts/system-deps mosquitto buildah debootstrap faketime strace iproute2 systemd nats-server postgresql
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# DEMO_SECONDS=N make demo: run N seconds without a terminal (CI); see docs/demo.md.
demo: $(DEMO_STAMP)
	$(BIN)/python scripts/demo.py

# The OCI image, built with buildah on a stand-in base from Debian's packages (docs/container.md).
container:
	scripts/system-deps buildah debootstrap
	scripts/container-build-local

bench: install
	$(BIN)/edge-agent bench bus --json

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
