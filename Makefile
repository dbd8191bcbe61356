# SEE developer commands. `make run` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test test-unit test-integration check lint typecheck proto-lint proto-breaking generate check-generated bench docker-lint helm-validate clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## The server on embedded defaults (SQLite, in-process bus, paper broker, sample data).
run: setup
	$(BIN)/python -m see_grpc

## Every test: unit and integration (PostgreSQL and Redis tests skip without them, fail under CI=true).
test: setup
	$(BIN)/python -m pytest

test-unit: setup
	$(BIN)/python -m pytest -m unit

test-integration: setup
	$(BIN)/python -m pytest -m integration

## Lint, types, protos, stale generated code, container and chart checks.
check: lint typecheck proto-lint check-generated docker-lint helm-validate

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

proto-lint: setup
	$(BIN)/buf lint
	$(BIN)/buf format -d --exit-code

## Breaking-change check of the protos against the previous commit (skipped on the first commit).
proto-breaking: setup
	if git rev-parse --verify --quiet HEAD~1 >/dev/null; then \
		$(BIN)/buf breaking --against '.git#ref=HEAD~1'; \
	else echo "no previous commit: nothing to compare"; fi

## Regenerate the Python stubs (.py, .pyi) and the OpenAPI document from protos/.
generate: setup
	$(BIN)/python tools/codegen.py

check-generated: setup
	$(BIN)/python tools/codegen.py --check

docker-lint: setup
	$(BIN)/hadolint Dockerfile

helm-validate: setup
	$(BIN)/python tools/helm_check.py

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
