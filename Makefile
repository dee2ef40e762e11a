# Two commands do everything on a fresh clone: `make dev` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## make dev: the whole embedded stack on 127.0.0.1:8000 (commands) and :8001 (queries)
dev: $(STAMP)
	$(BIN)/cqrs-accounts dev

## make test: the whole suite (MariaDB/MySQL too when CQRS_TEST_MYSQL_URL is set)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .data .pytest_cache .ruff_cache
