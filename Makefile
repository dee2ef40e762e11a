# Two commands do everything on a fresh clone: `make dev` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test check lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## make dev: the whole stack on 127.0.0.1:8000 (commands) and :8001 (queries);
## BROKER=kafka runs it on real Apache Kafka (needs Java 17+) instead of the embedded Tansu
BROKER ?= tansu
dev: $(STAMP)
	$(BIN)/cqrs-accounts dev --broker $(BROKER)

## make test: the whole suite (MariaDB/MySQL too when CQRS_TEST_MYSQL_URL is set), each
## integration test on the embedded pair (Tansu + SQLite) and the production one (Kafka +
## MySQL); CQRS_TEST_PAIRS=all runs every broker x write-store pair. PYTEST_WORKERS (2) share
## the tests between two processes (pytest-xdist), each with its own servers, the tests marked
## slow first (tests/support/order.py): 12.4 min here for 1,158 tests (.ci/run, 2026-12-03).
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(PYTEST_WORKERS)
test: $(STAMP)
	$(BIN)/ruff check .
	$(PYTEST)

## make check: the edit-test loop: ruff, the unit tests and the integration tests on the
## embedded pair alone (Tansu + SQLite; no Kafka, no MySQL), leaving out the 14 tests marked
## slow (whole stacks in subprocesses, kill -9 chaos, the fuzzer, the bench's smoke run),
## which make test runs: 4.0 min here (8.1 with them).
check: $(STAMP)
	$(BIN)/ruff check .
	CQRS_TEST_BROKERS=tansu CQRS_TEST_MYSQL_URL= CQRS_TEST_REQUIRE_BACKENDS= $(PYTEST) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .

## make fuzz: schemathesis against both services at length (the suite runs a short version);
## FUZZ_EXAMPLES per operation, FUZZ_SEED, FUZZ_MAX_TIME seconds per service
.PHONY: fuzz
FUZZ_EXAMPLES ?= 300
FUZZ_SEED ?= $(shell date +%s)
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SEED=$(FUZZ_SEED) FUZZ_MAX_TIME=$(FUZZ_MAX_TIME) \
		$(BIN)/python -m pytest -p no:cacheprovider -s tests/integration/test_fuzz.py

clean:
	rm -rf $(VENV) .data .cache .pytest_cache .ruff_cache

# Benchmarks (not part of `make test`; its smoke mode is, as tests/integration/test_bench_smoke.py).
.PHONY: bench bench-large
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

## make bench: each stage beside the raw ceiling of its component and the python-cqrs peer
## (~20 min on 2 cores); writes bench/results/<date>.json and .md, and latest.md.
## BROKER=kafka: the relay, projector and end-to-end sections on real Apache Kafka, each
## beside raw aiokafka on the same broker (<date>-kafka.json and .md)
bench: $(BENCH_STAMP)
ifeq ($(BROKER),kafka)
	$(BIN)/python -m bench --broker kafka --only relay,projector,e2e
else
	$(BIN)/python -m bench
endif

## make bench-large: the same plus the 1M-row variants (relay 1M, commands on 1M events,
## a verify --watch pass after 1M events)
bench-large: $(BENCH_STAMP)
	$(BIN)/python -m bench --large
