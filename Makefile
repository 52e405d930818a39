# Orderflow — `make run` runs the system, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: web run stop test test-packages test-setup test-unit test-deploy test-integration test-e2e test-cluster cluster bench bench-cluster bench-search bench-web notebook venv check migrate seed kuberay dashboards k8s-dev-secrets clean

# The environment is (re)built when pyproject.toml or the pinned versions change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# The web clients (web/, README "Web clients"): `npm ci` from the lockfile when it changed, then
# the type check and the build into web/dist/, which the gateway serves. Node.js (20.19+) and npm
# are needed only here, never at run time.
WEB_STAMP := web/node_modules/.installed
$(WEB_STAMP): web/package-lock.json
	@command -v npm >/dev/null || { echo "make web needs Node.js 20.19+ and npm to build web/"; exit 1; }
	cd web && npm ci --no-audit --no-fund
	@touch $(WEB_STAMP)

web: $(WEB_STAMP)
	cd web && npm run build

# System packages first (installed as root, else the one command is printed), then the
# environment; `orderflow run` then checks settings, ports and servers before it starts.
run:
	@deployments/system-packages.sh run
	@$(MAKE) --no-print-directory venv web
	$(BIN)/orderflow run

stop: $(STAMP)
	$(BIN)/orderflow stop

check migrate seed: $(STAMP)
	$(BIN)/orderflow $@

# The tests need the system packages and, but for the unit tests, the three local servers
# (started if stopped).
test-packages:
	@deployments/system-packages.sh test
	@$(MAKE) --no-print-directory venv

test-setup: test-packages web
	@deployments/local-servers.sh

# The cluster tests run on their own: their cluster must be gone before the e2e stack starts.
test: test-setup
	$(BIN)/pytest -ra --ignore=tests/cluster
	$(BIN)/pytest -ra tests/cluster

test-unit: test-packages
	$(BIN)/pytest -ra tests/unit

# Deployment files (Dockerfile, compose.yaml, k8s/, ray-cluster.yaml), checked offline: no server.
test-deploy: test-packages
	$(BIN)/pytest -ra tests/deploy

test-integration test-e2e test-cluster: test-setup
	$(BIN)/pytest -ra tests/$(subst test-,,$@)

# The system on a Ray cluster of a head and two workers on this machine, with Ray's autoscaler
# (README, Scale-out); `make bench-cluster` measures it under load steps.
cluster:
	@deployments/system-packages.sh run
	@$(MAKE) --no-print-directory venv
	$(BIN)/orderflow cluster

# The orders list's queries on 1,000,000 orders with and without the search indexes (README,
# Performance, Orders search); a database of its own, dropped afterwards.
bench-search: $(STAMP)
	$(BIN)/python -m bench.orders_search

bench-cluster: $(STAMP)
	$(BIN)/python -m bench.cluster_scaling

# Admin panel page load through the gateway in Chromium, cold and warm cache (README, Web clients).
bench-web: $(STAMP) web
	$(BIN)/python -m bench.page_load

bench: $(STAMP)
	@deployments/system-packages.sh bench
	$(BIN)/python -m bench.orders_throughput
	$(BIN)/python -m bench.auth_tokens
	$(BIN)/python -m bench.tracing_cost

# k8s/kuberay/rayservice.yaml's serveConfigV2 from deployments/serve_config.yaml (a test checks it).
kuberay: $(STAMP)
	$(BIN)/python -m deployments.kuberay

# monitoring/grafana/dashboards: the Orderflow dashboard from its code, Ray's from the installed
# Ray's generator (tests/deploy/test_grafana.py checks they are current).
dashboards: $(STAMP)
	$(BIN)/python -m monitoring.grafana.generate

# The dev overlay's Secret (random passwords, a signing key), made once, git-ignored.
k8s-dev-secrets: $(STAMP)
	$(BIN)/python -m deployments.dev_secrets

notebook: $(STAMP)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .run *.egg-info
