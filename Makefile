# Two commands, each installs what it needs into .venv first (Python 3.11+ and make only):
#   make demo   install assetferry and run the offline demo migration
#   make test   install the dev tools and run ruff, mypy --strict and the full test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.run-installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install -q -c constraints.txt -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.run-installed
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

demo: $(VENV)/.run-installed
	$(BIN)/assetferry demo

test: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/mypy .
	$(BIN)/pytest -q

bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) demo-output
