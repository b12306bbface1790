# Entry points. Every target sets up what it needs on a fresh Debian machine first.
SHELL := /bin/bash
VENV := .venv/bin

.PHONY: bootstrap demo test unit integration sanity lint format bench clean

bootstrap:
	@scripts/bootstrap.sh

## Run the main job on the embedded default: an example fleet against the local test instance.
demo: bootstrap
	@scripts/demo.sh

## Run the whole test suite: lint, unit, integration, ansible-test sanity.
test: bootstrap
	@scripts/test.sh

unit: bootstrap
	$(VENV)/pytest -q tests/unit

integration: bootstrap
	$(VENV)/pytest -q tests/integration

sanity: bootstrap
	@scripts/sanity.sh

lint: bootstrap
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/ansible-lint

format: bootstrap
	$(VENV)/ruff format .
	$(VENV)/ruff check --fix .

## Benchmarks against the alternatives (not part of `make test`).
bench: bootstrap
	@scripts/bench.sh

clean:
	rm -rf .venv .collections tests/output demo-output .pytest_cache .ruff_cache .mypy_cache
