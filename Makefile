# Switchboard: `make run` starts the offline demo, `make test` checks everything CI checks.
# Both set up what they need themselves (.venv from PyPI, buf from npm) on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUF_VERSION := 1.75.0
BUF := .tools/buf/node_modules/.bin/buf

.PHONY: run test lint proto proto-check buf-lint buf-breaking pytest typecheck format bench clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(BUF):
	npm install --silent --no-audit --no-fund --prefix .tools/buf @bufbuild/buf@$(BUF_VERSION)

run: $(STAMP)
	$(BIN)/switchboard dev --config examples/dev.yaml --scenarios examples/fake-scenarios.yaml

test: lint pytest

pytest: $(STAMP) browser
	$(BIN)/python -m pytest

# The /admin page's browser test (tests/http_edge/test_admin_browser.py) drives Debian's chromium:
# installed here when it is missing and we are root; otherwise the test skips (fails if CI=true).
browser:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium for the admin page's browser test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
	    || echo "chromium could not be installed: the browser test will skip (or fail under CI=true)"; \
	fi

lint: proto-check buf-lint buf-breaking $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Regenerate clients/switchboard from protos/ (committed; CI fails when it is stale).
proto: $(STAMP)
	$(BIN)/python scripts/gen_protos.py

proto-check: $(STAMP)
	$(BIN)/python scripts/gen_protos.py --check

buf-lint: $(BUF)
	$(BUF) lint

# Breaking-change check of the contract against the previous commit (each landed step must be
# compatible with the one before it). Override: make buf-breaking AGAINST='.git#branch=main'
AGAINST ?= .git\#ref=HEAD~1
buf-breaking: $(BUF)
	@if git rev-parse --verify --quiet HEAD~1 >/dev/null && \
	    git ls-tree -r --name-only HEAD~1 -- protos | grep -q '\.proto$$'; then \
	  $(BUF) breaking --against '$(AGAINST)'; \
	else echo "buf breaking: no earlier contract to compare with"; fi

# Benchmarks (issue #10): Switchboard vs direct-to-upstream vs LiteLLM proxy on this machine;
# writes benchmarks/results/latest.{json,md,png}. `make bench BENCH_ARGS=--quick` is a smoke run.
# Profiles of the hot path: `$(BIN)/python -m benchmarks.profile` (py-spy). See benchmarks/README.md.
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
