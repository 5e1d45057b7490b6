# Two commands, each installs what it needs into .venv first (Python 3.11+ and make only):
#   make demo   install assetferry and run the offline demo migration
#   make test   install the dev tools and run ruff, mypy --strict and the full test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

CHROMIUM ?= /usr/bin/chromium

.PHONY: demo test lint typecheck pytest bench clean chromium postgres

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

# The HTML report tests drive Debian's Chromium (Playwright never downloads a browser here).
# Installed once when missing, as root or with sudo; otherwise those tests skip, saying why.
chromium:
	@if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "chromium: no $(CHROMIUM) and no apt-get: the HTML report browser tests will skip"; \
	  exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "chromium: no $(CHROMIUM) and not root (no sudo without a password): the HTML" \
	  "report browser tests will skip; install it with: sudo apt-get install chromium"; \
	  exit 0; fi; \
	echo "chromium: installing Debian's chromium package for the HTML report tests (once)"; \
	if ! { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get \
	  install -y -qq --no-install-recommends chromium; } >$(VENV)/chromium-install.log 2>&1; \
	then echo "chromium: apt-get install failed (see $(VENV)/chromium-install.log): the" \
	  "HTML report browser tests will skip"; fi

# The state-store suite and one end-to-end run also go to a throw-away PostgreSQL server that
# the tests start themselves (initdb/pg_ctl in a temp dir, tests/pgserver.py). Debian's
# postgresql package is installed once when initdb is missing, as root or with sudo;
# otherwise those tests skip, saying why.
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; \
	then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "postgres: no initdb and no apt-get: the PostgreSQL state-store tests will skip"; \
	  exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "postgres: no initdb and not root (no sudo without a password): the" \
	  "PostgreSQL state-store tests will skip; install it with: sudo apt-get install" \
	  "postgresql"; exit 0; fi; \
	echo "postgres: installing Debian's postgresql package for the state-store tests (once)"; \
	if ! { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get \
	  install -y -qq --no-install-recommends postgresql; } >$(VENV)/postgres-install.log 2>&1; \
	then echo "postgres: apt-get install failed (see $(VENV)/postgres-install.log): the" \
	  "PostgreSQL state-store tests will skip"; fi

test: $(VENV)/.dev-installed
	@$(MAKE) --no-print-directory chromium postgres
	$(BIN)/ruff check .
	$(BIN)/mypy .
	$(BIN)/pytest -q

bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) demo-output
