# notifier: `make run` to try it, `make test` to check it. Everything else is set up on the way.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

export REDIS_URL ?= redis://127.0.0.1:6379/0
TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: setup run test test-sqlite test-postgres lint audit format bench faults faults-short clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

.env:
	$(BIN)/python scripts/make_env.py

setup: $(STAMP) .env
	mkdir -p instance

run: setup
	$(BIN)/python scripts/ensure_redis.py
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi notifier seed-demo
	@echo "Try it: $(BIN)/python scripts/send_demo_event.py   (the SMS appears below)"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Known vulnerabilities in the installed dependencies (says so when the database is unreachable).
audit: setup
	$(BIN)/python scripts/audit_dependencies.py

test: setup lint audit
	REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python scripts/ensure_redis.py
	scripts/ensure_chromium.sh
	BIN=$(BIN) TEST_POSTGRES_URL=$(TEST_POSTGRES_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) \
		scripts/run_tests.sh $(PYTEST_ARGS)
	$(MAKE) --no-print-directory faults-short

test-sqlite:
	@echo "== test suite on SQLite"
	TEST_REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest -q $(PYTEST_ARGS)

test-postgres:
	@echo "== test suite on PostgreSQL"
	TEST_DATABASE_URL=$(TEST_POSTGRES_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest -q $(PYTEST_ARGS)

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	@if [ -z "$$BENCH_DATABASE_URL" ] && $(BIN)/python scripts/postgres_answers.py "$(TEST_POSTGRES_URL)"; then \
		BENCH_DATABASE_URL=$(TEST_POSTGRES_URL) $(BIN)/python -m bench; \
	else $(BIN)/python -m bench; fi

faults: setup
	$(BIN)/python -m bench.faults

# The fault suite's short form (a few scenarios, under two minutes); part of `make test`.
faults-short: setup
	$(BIN)/python -m bench.faults --short

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts
