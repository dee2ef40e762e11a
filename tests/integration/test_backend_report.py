"""The suite names the backends it ran on, and fails when one that CI requires ran nothing
(CQRS_TEST_REQUIRE_BACKENDS): a MySQL or Kafka tier that silently skipped must not pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_suite_part(required: str, *options: str) -> subprocess.CompletedProcess:
    """pytest on a module that needs no server, as `make test` runs it."""
    env = {**os.environ, "CQRS_TEST_REQUIRE_BACKENDS": required}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           *options, "tests/unit/test_money.py"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_required_backend_that_ran_no_test_fails_the_session():
    result = run_suite_part("mysql")
    assert result.returncode == 1, result.stdout
    assert "passed" in result.stdout and "failed" not in result.stdout  # its tests passed
    assert "required backends ran no test: mysql" in result.stdout


def test_the_session_passes_and_names_its_backends_when_nothing_is_required():
    result = run_suite_part("")
    assert result.returncode == 0, result.stdout
    assert "backends: no test ran on a server" in result.stdout


@pytest.mark.slow
def test_with_two_workers_the_controller_alone_counts_reports_and_judges_the_backends():
    """Under pytest-xdist (`make test`) each worker sees only its share: the backends a
    worker's tests ran on come to the controller on the test reports, and it alone prints the
    figures and fails the session when a required backend ran nothing (here MySQL)."""
    env = {**os.environ, "CQRS_TEST_REQUIRE_BACKENDS": "tansu,sqlite,mysql",
           "CQRS_TEST_BROKERS": "tansu", "CQRS_TEST_MYSQL_URL": ""}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2",
         "tests/integration/test_account_listing.py::test_customers_are_found_by_status_and_show_it",
         "tests/unit/test_money.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 1, result.stdout
    assert "passed" in result.stdout and "failed" not in result.stdout  # its tests passed
    assert result.stdout.count("backends: secantus 1 tests, sqlite 1 tests, tansu 1 tests") == 1
    assert result.stdout.count("time per pair: tansu-sqlite") == 1
    assert result.stdout.count("required backends ran no test: mysql") == 1
