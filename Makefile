# The two commands of the README. Everything is installed into .venv by these rules.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint typecheck pytest bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $@

run: $(STAMP)
	$(BIN)/auditkeep serve

test: $(DEV_STAMP) lint typecheck pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench tools

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# The suite starts hundreds of server and CLI processes; where PYTHONDONTWRITEBYTECODE
# is set (as on CI here) each would compile src/ again (~0.4 s a start, measured), so it
# is compiled once first. It runs on PYTEST_WORKERS processes (pytest-xdist), a test
# file per worker at a time (module fixtures start servers once): on this 2-core
# machine 2 workers took the suite from 22 to 12 minutes. PYTEST_WORKERS=0 runs serially.
PYTEST_WORKERS ?= 2
pytest: $(DEV_STAMP)
	$(BIN)/python -m compileall -q src > /dev/null
	$(BIN)/pytest $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

bench: $(DEV_STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/proofs.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/redaction.py
	$(BIN)/python bench/purge.py
	$(BIN)/python bench/retention.py
	$(BIN)/python bench/holds.py
	$(BIN)/python bench/archive.py
	$(BIN)/python bench/evidence.py
	$(BIN)/python bench/witness.py
	$(BIN)/python bench/selfaudit.py
	$(BIN)/python bench/scale.py  # needs PostgreSQL and NATS (docs/scaling.md)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
