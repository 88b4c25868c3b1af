# Beckon — the two commands a newcomer needs are `make dev` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
CHROMIUM ?= /usr/bin/chromium
# kustomize renders deploy/ in the tests: pinned, built from the Go module proxy (no kubectl wheel
# for Linux exists on PyPI); `go` checks the module against sum.golang.org
KUSTOMIZE_VERSION := v5.5.0
KUSTOMIZE := .tools/kustomize-$(KUSTOMIZE_VERSION)
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)

.PHONY: help uv install browser kafka kustomize checkov dev test test-fast lint audit fmt schemas kafka-topics bench clean images

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

uv: ## install uv (the package manager) if it is missing
	@command -v $(UV) >/dev/null 2>&1 || { \
	  echo "==> installing uv with $(PYTHON) -m pip"; \
	  $(PYTHON) -m pip install --user --quiet uv || $(PYTHON) -m pip install --quiet uv; }

install: uv ## create .venv with every workspace package and the dev tools (from uv.lock)
	@echo "==> syncing the workspace (.venv)"
	@$(UV) sync --locked

browser: ## make sure Debian's Chromium is present for the browser tests
	@test -x $(CHROMIUM) || { \
	  echo "==> installing Debian's chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium is missing at $(CHROMIUM): install Debian's 'chromium' package (or set CHROMIUM=...)"; exit 1; fi; }

kafka: install ## fetch Apache Kafka's jars from Maven Central once (needs java 17+; mvn the first time)
	@$(UV) run python -m beckon_devstack.kafka fetch

kustomize: $(KUSTOMIZE) ## build the pinned kustomize the deploy tests render with (needs go)

$(KUSTOMIZE):
	@test -x $(GO) || { echo "go is missing: install Go 1.22+ (https://go.dev/dl) to build kustomize $(KUSTOMIZE_VERSION), or set GO=..."; exit 1; }
	@echo "==> building kustomize $(KUSTOMIZE_VERSION) from the Go module proxy (once, about a minute)"
	@mkdir -p .tools/go-bin
	@GOBIN=$(abspath .tools/go-bin) GOFLAGS=-buildvcs=false $(GO) install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	@mv .tools/go-bin/kustomize $@

# checkov (the deploy tests' policy scan) in its own venv: its ~90 dependencies would pin older
# pytest and packaging in the workspace's lock. Every version and hash: tests/deploy/checkov/.
CHECKOV_REQUIREMENTS := tests/deploy/checkov/requirements.txt
CHECKOV := .tools/checkov/bin/checkov

checkov: $(CHECKOV) ## install the pinned checkov the deploy tests scan with (into .tools/checkov)

$(CHECKOV): $(CHECKOV_REQUIREMENTS) | install
	@echo "==> installing checkov from $(CHECKOV_REQUIREMENTS) into .tools/checkov"
	@rm -rf .tools/checkov
	@$(UV) venv --quiet --python .venv/bin/python .tools/checkov
	@$(UV) pip sync --quiet --require-hashes --python .tools/checkov/bin/python $(CHECKOV_REQUIREMENTS)
	@touch $@

dev: install kafka ## start the whole system on the embedded stack (Ctrl-C stops it)
	@$(UV) run beckon-dev

test: install browser kafka kustomize checkov ## run the full suite: unit, integration (real broker/Postgres), browser e2e, fuzz
	@$(UV) run pytest

test-fast: install ## unit tests only
	@$(UV) run pytest -m "not integration and not e2e"

lint: install node_modules ## ruff (lint + format check), mypy, eslint on the JavaScript, pip-audit
	@$(UV) run ruff check .
	@$(UV) run ruff format --check .
	@$(UV) run mypy
	@npm run --silent lint
	@if [ "$(PIP_AUDIT)" = skip ]; then \
	  echo "==> PIP_AUDIT=skip: the locked dependencies were NOT audited for known vulnerabilities"; \
	else $(MAKE) --no-print-directory audit; fi

# pip-audit over the locked requirements (every group), judged against the allow-list that says
# why each exception stands; a dependency the vulnerability service did not answer for fails it
# (pip-audit alone would skip it and pass). `npm audit` is not run: eslint is the only JS, a
# dev tool, and the registry mirror here refuses npm's bulk advisory endpoint.
PIP_AUDIT ?= required
PIP_AUDIT_SERVICE ?= pypi

audit: install ## audit the locked Python dependencies for known vulnerabilities (pip-audit)
	@mkdir -p .tools
	@$(UV) export --locked --all-groups --no-emit-workspace --quiet --output-file .tools/requirements-audit.txt
	@$(UV) run python tests/security/deps/audit.py .tools/requirements-audit.txt --service $(PIP_AUDIT_SERVICE)

# the JavaScript linter only (package.json, pinned in package-lock.json); nothing is built
node_modules: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "npm is missing: install Node.js 18.18+ (Debian: apt-get install nodejs npm) for the JS linter"; exit 1; }
	@echo "==> installing the JavaScript linter (npm ci)"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch node_modules

fmt: install ## apply ruff's formatting and safe fixes
	@$(UV) run ruff check --fix .
	@$(UV) run ruff format .

schemas: install ## re-export the JSON Schemas of the contracts
	@$(UV) run python -m beckon_contracts.schemas

kafka-topics: install ## regenerate deploy/components/strimzi (KafkaTopics, KafkaUsers, their wiring)
	@$(UV) run python -m beckon_contracts.strimzi

bench: install ## run the benchmarks (prints RESULT lines)
	@$(UV) run python bench/tracker.py --seconds 10
	@$(UV) run python bench/triggers.py
	@$(UV) run python bench/rules_eval.py
	@$(UV) run python bench/chat.py
	@$(UV) run python bench/console.py

# The five service images, built from the repository root (tagged <service>:<version> and
# <service>:latest, which docker-compose.yml runs); the OCI labels get the version, the commit
# (with -dirty for uncommitted changes) and the origin's URL without any credentials in it.
DOCKER ?= docker
IMAGES := tracker triggers chat leads notifier

images: ## build the five service images with Docker (needs docker)
	@command -v $(DOCKER) >/dev/null 2>&1 || { \
	  echo "docker is missing: install Docker Engine (https://docs.docker.com/engine/install/) to build the images, or set DOCKER=...; nothing was built"; exit 1; }
	@version=$$(sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml | head -n 1); \
	revision=$$(git rev-parse HEAD 2>/dev/null || echo unknown); \
	if [ -n "$$(git status --porcelain 2>/dev/null)" ]; then revision="$$revision-dirty"; fi; \
	source=$$(git remote get-url origin 2>/dev/null | sed -E 's#^([a-z+]+://)[^@/]*@#\1#'); \
	for service in $(IMAGES); do \
	  echo "==> building $$service:$$version ($$revision)"; \
	  $(DOCKER) build --file services/$$service/Dockerfile \
	    --tag $$service:$$version --tag $$service:latest \
	    --build-arg VERSION=$$version --build-arg REVISION=$$revision \
	    --build-arg SOURCE=$${source:-unknown} . || exit 1; \
	done

clean: ## remove caches and the dev stack's state
	rm -rf .dev .pytest_cache .mypy_cache .ruff_cache .hypothesis node_modules
