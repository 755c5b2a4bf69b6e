# The two commands of the quick start: `make run` and `make test`. Both set up a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_STAMP := $(VENV)/.apt-installed
APT_PACKAGES := prometheus prometheus-alertmanager docker-compose chromium

.PHONY: run test bench lint typecheck unit setup apt clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Debian's Prometheus and Alertmanager for the integration tests, docker-compose, whose `config`
# validates deploy/compose.yaml, and chromium, which the web board's browser test drives (installed
# when missing).
$(APT_STAMP): Makefile | $(BIN)/python
	@if ! command -v prometheus-alertmanager >/dev/null || ! command -v prometheus >/dev/null \
		|| ! command -v docker-compose >/dev/null || ! command -v chromium >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $(APT_PACKAGES); \
	fi
	touch $@

setup: $(STAMP)

apt: $(APT_STAMP)

run: $(STAMP)
	$(BIN)/remediator dev $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) $(APT_STAMP) lint typecheck
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q $(PYTEST_ARGS)

# The benchmarks of README "Performance" (not part of `make test`): each starts its own stack.
# BENCH_ARGS reaches every one, e.g. BENCH_ARGS=--json.
BENCHMARKS := ingest incidents noop_steps parked
bench: $(STAMP)
	@for b in $(BENCHMARKS); do $(BIN)/python -m tests.benchmarks.$$b $(BENCH_ARGS) || exit 1; done

clean:
	rm -rf $(VENV) .remediator .pytest_cache .mypy_cache .ruff_cache
