# Developer commands. `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PYTEST_ARGS ?=
PORT ?= 8000

.PHONY: install install-dev demo serve test lint bench clean

$(BIN)/.installed: setup.cfg pyproject.toml setup.py events/_chain.c events/_prepare.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed  ## the service and its CLI only (what `make demo` needs)

install-dev: $(BIN)/.installed-dev  ## plus the test and lint tools

demo: install  ## load the demo timeline into a fresh database, print an admin token, serve it
	$(BIN)/policy-timeline serve --demo --port $(PORT)

serve: install  ## serve policy-timeline.db (or $$POLICY_TIMELINE_DB) with one scheduler
	$(BIN)/policy-timeline serve --port $(PORT)

test: install-dev  ## the whole suite (slow suites included, bounded), plus the layer contracts
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check events projections service tests bench
	$(BIN)/ruff format --check events projections service tests bench
	$(BIN)/mypy events projections
	$(BIN)/lint-imports

bench: install-dev  ## log throughput, projection rebuild, and the side-by-side comparison (needs the bench extra)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/log_throughput.py
	$(BIN)/python bench/projection_rebuild.py
	$(BIN)/python bench/compare.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis policy-timeline-demo.db policy-timeline-demo.db-*
	rm -rf build events/_chain.*.so events/_prepare.*.so
