# mcp-fleet: the runtime (server/), and later the operator (operator/), the chart and the e2e cluster.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: help venv test lint fmt run bench clean

help:
	@echo "make test   - install what the tests need (venv; redis-server from apt) and run them"
	@echo "make run    - serve the demo app with mcp-runtime on http://127.0.0.1:$(PORT)/mcp"
	@echo "make lint   - ruff and mypy"
	@echo "make bench  - the runtime benchmarks (bench/README.md)"

$(BIN)/mcp-runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: $(BIN)/mcp-runtime

test: venv
	$(BIN)/pytest -q -p no:cacheprovider

lint: venv
	$(BIN)/ruff check server tests bench
	$(BIN)/ruff format --check server tests bench
	$(BIN)/mypy

fmt: venv
	$(BIN)/ruff check --fix server tests bench
	$(BIN)/ruff format server tests bench

run: venv
	$(BIN)/mcp-runtime serve --app mcp_runtime.examples.demo:app --host 127.0.0.1 --port $(PORT)

bench: venv
	$(BIN)/python -m bench.runtime_bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache server/*.egg-info
