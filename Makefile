# salespulse — every target creates the virtual environment it needs.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= .salespulse-demo
PYTEST_ARGS ?=

.PHONY: help venv demo test test-unit test-integration bench bench-short lint clean

help:
	@echo "make demo   run the pipeline on the embedded broker and chDB with simulated CRM traffic"
	@echo "make test   run the whole test suite"
	@echo "make bench  the full benchmark (1M events; about 15 minutes), figures in bench-results/full.json"
	@echo "make lint   ruff (check and format), mypy and import-linter (the layers)"

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

demo: venv
	rm -rf $(DEMO_DIR)
	$(BIN)/salespulse up --simulate --data-dir $(DEMO_DIR)

test: venv
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/pytest -m "not integration and not e2e" $(PYTEST_ARGS)

test-integration: venv
	$(BIN)/pytest -m "integration or e2e" $(PYTEST_ARGS)

bench: venv
	$(BIN)/salespulse bench --output bench-results/full.json

bench-short: venv
	$(BIN)/salespulse bench --short --output bench-results/short.json

lint: venv
	$(BIN)/ruff check salespulse tests
	$(BIN)/ruff format --check salespulse tests
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(DEMO_DIR)
