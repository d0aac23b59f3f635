# SmartTickets: `make run` serves the demo on http://127.0.0.1:8000, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test test-postgres lint format bench demo clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/smarttickets migrate --noinput
	$(BIN)/smarttickets demo
	$(BIN)/smarttickets runserver $(HOST):$(PORT)

test: $(STAMP)
	$(BIN)/ruff check src tests bench conftest.py
	$(BIN)/smarttickets makemigrations --check --dry-run > /dev/null
	$(BIN)/pytest $(PYTEST_ARGS)

test-postgres: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/smarttickets} $(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench conftest.py

format: $(STAMP)
	$(BIN)/ruff format src tests bench conftest.py
	$(BIN)/ruff check --fix src tests bench conftest.py

demo: $(STAMP)
	$(BIN)/smarttickets migrate --noinput
	$(BIN)/smarttickets demo

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache .ruff_cache
