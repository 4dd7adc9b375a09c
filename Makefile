# mcp-fleet: the runtime (server/), the operator (operator/), the chart and the e2e cluster.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
CACHE ?= $(HOME)/.cache/mcp-fleet
HELM_VERSION := $(shell sed -n 's/^HELM_VERSION=//p' e2e/cluster/versions.env)
HELM := $(CACHE)/helm-$(HELM_VERSION)/bin/helm
ACTIONLINT_VERSION := $(shell sed -n 's/^ACTIONLINT_VERSION=//p' e2e/cluster/versions.env)
ACTIONLINT := $(CACHE)/actionlint-$(ACTIONLINT_VERSION)/bin/actionlint
KINDCHECK := $(CACHE)/kindcheck-$(shell sed -n 's/^KIND_VERSION=//p' e2e/cluster/versions.env)-$(shell sha256sum < e2e/cluster/kindcheck/main.go | cut -c1-12)/bin/kindcheck
SHELL_SCRIPTS := .ci/run $(shell git ls-files '*.sh' 2>/dev/null || find . -name '*.sh' -not -path './.venv/*')
CHART := charts/mcp-fleet

.PHONY: help venv test-packages test-clients bench-packages test lint fmt run bench crds chart helm demo demo-down e2e cluster-up cluster-down images own-server-image clean

help:
	@echo "make test   - install what the tests need (venv; redis-server and shellcheck from apt; the foreign clients) and run them"
	@echo "make run    - serve the demo app with mcp-runtime on http://127.0.0.1:$(PORT)/mcp"
	@echo "make lint   - ruff, mypy, the import rules (lint-imports), shellcheck (the shell scripts) and actionlint (the release workflow)"
	@echo "make bench  - the runtime benchmarks (docs/benchmarks.md)"
	@echo "make demo   - a cluster (CLUSTER=local|kind|current), the images, the operator with Helm, McpServers serving MCP"
	@echo "make e2e    - the e2e suite on CLUSTER (local: built once, cached, taken down after; kind; current + IMAGE_REGISTRY)"
	@echo "make images - build the runtime, operator and Redis images (e2e/images/build.sh)"
	@echo "make own-server-image - build examples/own-server (a PyPI server FROM the runtime image)"
	@echo "make chart  - helm lint and package charts/mcp-fleet into dist/"
	@echo "make crds   - regenerate crds/ from the operator's models and copy them into the chart"

$(BIN)/mcp-runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: $(BIN)/mcp-runtime

# What the tests run beside Python (Debian packages): redis-server (and its Sentinel mode), shellcheck for the
# shell scripts. Installed with apt when run as root, else the exact command is printed.
TEST_PACKAGES := redis-server shellcheck
test-packages:
	@missing=""; for p in $(TEST_PACKAGES); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	[ -z "$$missing" ] || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing (apt-get)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "make test needs$$missing: run  sudo apt-get install -y$$missing  first" >&2; exit 1; \
	  fi; }

# The clients nobody on the project wrote, which tests/runtime/test_foreign_clients.py runs against the runtime:
# the MCP conformance suite (on Node.js 22 from an npm package), the TypeScript and Go SDK clients in
# tests/clients/. Installed from their lock files into $(CACHE), keyed by what pins them; seconds when cached.
test-clients:
	bash tests/clients/install.sh

test: venv test-packages test-clients
	$(BIN)/pytest -q -p no:cacheprovider

lint: venv test-packages $(ACTIONLINT) $(KINDCHECK)
	$(BIN)/ruff check server operator tests bench e2e
	$(BIN)/ruff format --check server operator tests bench e2e
	$(BIN)/mypy
	$(BIN)/lint-imports
	shellcheck -x -P SCRIPTDIR $(SHELL_SCRIPTS)
	$(ACTIONLINT) .github/workflows/*.yml
	$(KINDCHECK) e2e/kind/kind.yaml

# actionlint, built once from its pinned release (go install) into the cache; it runs shellcheck on the
# workflows' run: blocks too.
$(ACTIONLINT):
	bash e2e/cluster/build.sh actionlint

# kind's config types, to check e2e/kind/kind.yaml (kind itself cannot run on these machines: docs/cluster.md).
$(KINDCHECK):
	bash e2e/cluster/build.sh kindcheck

fmt: venv
	$(BIN)/ruff check --fix server operator tests bench e2e
	$(BIN)/ruff format server operator tests bench e2e

run: venv
	$(BIN)/mcp-runtime serve --app mcp_runtime.examples.demo:app --host 127.0.0.1 --port $(PORT)

# What the benchmarks run beside Python: wrk (the load generator), installed like the test packages.
BENCH_PACKAGES := wrk redis-server
bench-packages:
	@$(MAKE) --no-print-directory test-packages TEST_PACKAGES="$(BENCH_PACKAGES)"

bench: venv bench-packages
	$(BIN)/python -m bench.runtime_bench
	$(BIN)/python -m bench.redis_bench

# The CRD is generated from the operator's pydantic models; crds/ is the one source and the chart gets a
# copy. Tests fail when either checked-in copy is stale.
crds: venv
	$(BIN)/python -m mcp_operator.crd > crds/mcpservers.yaml
	rm -f $(CHART)/crds/*.yaml
	cp crds/*.yaml $(CHART)/crds/

# helm, built once from its pinned release (go install) into the cache.
$(HELM):
	bash e2e/cluster/build.sh helm

helm: $(HELM)

chart: $(HELM)
	$(HELM) lint --strict $(CHART)
	mkdir -p dist
	$(HELM) package $(CHART) -d dist

# The local cluster needs root; it is built from pinned releases the first time (about 12 minutes here).
cluster-up:
	bash e2e/cluster.sh up

cluster-down:
	bash e2e/cluster.sh down

images:
	bash e2e/images/build.sh runtime operator redis

# examples/own-server: mcp-server-time from PyPI in an image built FROM the runtime image (buildah here).
own-server-image:
	bash e2e/images/build.sh own-server

# Where `make demo` and `make e2e` run (e2e/target.sh): local (the cluster this machine builds, with a
# registry of its own that the node pulls the images from), kind (a kind cluster, images built with docker
# or podman and loaded), or current (the current kubectl context; images pushed to IMAGE_REGISTRY).
CLUSTER ?= local
export CLUSTER IMAGE_REGISTRY
TARGET := bash e2e/target.sh

# The main job: a cluster, the images, the operator installed with Helm, and McpServers from examples/
# serving MCP traffic across replicas (checked with the official client).
demo: venv $(HELM)
	$(TARGET) up
	$(TARGET) images runtime operator redis
	eval "$$($(TARGET) env)" && $(BIN)/python -m e2e.demo

demo-down:
	$(TARGET) down

# The e2e suite needs only what `e2e/target.sh env` exports: a KUBECONFIG, where the images are, kubectl and
# helm on PATH. With CLUSTER=local the cluster is taken down afterwards (and the last test checks that
# nothing of it is left); other clusters stay as they were. E2E_ARGS: more pytest arguments (e.g. --deselect).
E2E_ARGS ?=
e2e: venv $(HELM)
	$(TARGET) up
	$(TARGET) images runtime operator redis own-server oidc-provider
	eval "$$($(TARGET) env)" && MCP_FLEET_E2E_TEARDOWN=$$([ "$(CLUSTER)" = local ] && echo 1) \
	  $(BIN)/pytest -q -p no:cacheprovider $(E2E_ARGS) e2e; status=$$?; \
	  if [ "$(CLUSTER)" = local ]; then $(TARGET) down >/dev/null 2>&1; fi; exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache server/*.egg-info dist
