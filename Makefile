# Developer commands. `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: install demo serve test lint bench clean

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install  ## load the demo timeline into a fresh database and serve it
	$(BIN)/policy-timeline serve --demo

serve: install
	$(BIN)/policy-timeline serve

test: install  ## the whole suite (slow suites included, bounded), plus the layer contracts
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check events projections service tests bench
	$(BIN)/ruff format --check events projections service tests bench
	$(BIN)/mypy events projections
	$(BIN)/lint-imports

bench: install
	$(BIN)/python bench/log_throughput.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
