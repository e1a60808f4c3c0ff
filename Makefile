# Doodle flywheel. GNU make. Everything runs from the virtual environment in $(VENV),
# created and kept in sync with requirements*.txt / pyproject.toml on demand.
#
#   make run                 # the whole product on http://127.0.0.1:8000 (PORT overrides)
#   make test                # the whole suite (PYTEST_ARGS="-x tests/unit" narrows it)
#   make lint | fmt | migrate | bench | clean
#
# Unset DATABASE_URL / REDIS_URL / STORAGE_URL mean embedded Postgres, Redis and a
# local object folder under var/; set them to use real servers (CI does).

VENV ?= .venv
PYTHON ?= python3
PYTEST_ARGS ?=
BENCH_ARGS ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.doodle-installed

.DEFAULT_GOAL := help
.PHONY: help install run test lint fmt migrate bench clean distclean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# The venv is rebuilt only when the pins or the package metadata change.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "$(PYTHON) is older than Python 3.11; run make PYTHON=python3.11 ..." >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(STAMP) ## create / update the virtual environment

run: $(STAMP) ## start everything (embedded services unless *_URL are set)
	$(BIN)/doodle run

test: $(STAMP) ## run the whole test suite; PYTEST_ARGS passes options / paths
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff (lint + format check), mypy and the import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP) ## format and auto-fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrate: $(STAMP) ## migrate the database to head
	$(BIN)/doodle db upgrade

bench: $(STAMP) ## product vs the seed's synchronous design (BENCH_ARGS passes options)
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

clean: ## remove caches and build leftovers (keeps var/ data and the venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean ## also remove the virtual environment (var/ data stays)
	rm -rf $(VENV)
