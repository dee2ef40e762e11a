"""Every operator command answers a failure the way `psql` or `kubectl` would: one line that says
what failed, where and what to do next, exit status 1, and nothing left behind; the traceback
only with `--debug`. Each command runs as a user runs it (the console script, in a folder of its
own), in each situation a new user meets: an empty folder, a write model never migrated, a read
store that answers every command with an error. (A dependency that is down is
test_dependency_down.py's.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from command_service.db.migrate import upgrade_to_head
from tests.support.failing_read_store import FailingReadStore
from tests.support.ports import closed_port
from tests.support.processes import SCRIPT

READ_STORE_COMMANDS = [("dlq", "list"), ("dlq", "show", "no-such-entry"), ("dlq", "retry"),
                       ("dlq", "discard", "no-such-entry")]
WRITE_MODEL_COMMANDS = [("status",), ("verify",), ("verify", "--repair"), ("rebuild",)]
OPERATOR_COMMANDS = WRITE_MODEL_COMMANDS + READ_STORE_COMMANDS
MAX_LINES = 3


def run(command: tuple[str, ...], cwd: Path, **settings: str) -> subprocess.CompletedProcess:
    """The command with no CQRS_* variable but `settings` (and a short start-up wait)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CQRS_")}
    env.update(settings)
    return subprocess.run([str(SCRIPT), *command], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def lines_of(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]


def files_under(folder: Path) -> list[tuple[Path, int]]:
    """Every path with its size: a file a command only read must not even be written to."""
    return sorted((path, path.stat().st_size if path.is_file() else -1)
                  for path in folder.rglob("*"))


def assert_one_line_failure(result: subprocess.CompletedProcess, *expected: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert 1 <= len(lines_of(result)) <= MAX_LINES, output
    assert "Traceback" not in output, output
    last = lines_of(result)[-1]
    for text in expected:
        assert text in last, output
    return last


@pytest.mark.parametrize("command", [*OPERATOR_COMMANDS, ("relay", "--resend-from", "1")],
                         ids=" ".join)
def test_in_an_empty_folder_a_command_says_there_is_no_stack_and_creates_nothing(
        command, tmp_path):
    # The relay is a process: it needs no stack to be configured, but waits for the default
    # write model, which is not there either. CQRS_STARTUP_WAIT_S locates nothing.
    result = run(command, tmp_path, CQRS_STARTUP_WAIT_S="1")
    line = assert_one_line_failure(result, "make dev")
    assert "no stack to work on" in line or "no write model at .data/write.db" in line
    assert files_under(tmp_path) == []


def test_schema_check_in_an_empty_folder_says_there_is_no_contract(tmp_path):
    result = run(("schema", "--check"), tmp_path)
    assert_one_line_failure(result, "no event contract at docs/events", "--directory")
    assert files_under(tmp_path) == []


@pytest.fixture(params=["missing file", "empty file"])
def unmigrated_database(request, tmp_path) -> Path:
    database = tmp_path / "elsewhere" / "write.db"
    if request.param == "empty file":
        database.parent.mkdir()
        database.touch()
    return database


@pytest.mark.parametrize("command", [*WRITE_MODEL_COMMANDS, ("relay", "--resend-from", "1")],
                         ids=" ".join)
def test_a_write_model_never_migrated_is_named_with_the_fix(command, unmigrated_database,
                                                             tmp_path):
    folder = tmp_path / "cwd"
    folder.mkdir()
    before = files_under(tmp_path)
    with closed_port() as broker, closed_port() as read_store:
        result = run(command, folder,
                     CQRS_DATABASE_URL=f"sqlite+aiosqlite:///{unmigrated_database}",
                     CQRS_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{broker}",
                     CQRS_MONGO_URL=f"mongodb://127.0.0.1:{read_store}/?directConnection=true",
                     CQRS_STARTUP_WAIT_S="1")
    assert_one_line_failure(result, f"no write model at {unmigrated_database}",
                            "(CQRS_DATABASE_URL)", "cqrs-accounts migrate")
    assert files_under(tmp_path) == before


@pytest.fixture
def failing_read_store():
    store = FailingReadStore().start()
    yield store
    store.stop()


@pytest.fixture
def migrated_database(tmp_path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'write.db'}"
    upgrade_to_head(url)
    return url


@pytest.mark.parametrize("command", OPERATOR_COMMANDS, ids=" ".join)
def test_a_read_store_that_answers_with_an_error_is_one_line(
        command, failing_read_store, migrated_database, tmp_path):
    folder = tmp_path / "cwd"
    folder.mkdir()
    with closed_port() as broker:
        result = run(command, folder, CQRS_DATABASE_URL=migrated_database,
                     CQRS_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{broker}",
                     CQRS_MONGO_URL=failing_read_store.mongo_url)
    line = assert_one_line_failure(
        result, f"the read store at 127.0.0.1:{failing_read_store.port} (CQRS_MONGO_URL)",
        "OperationFailure: internal server error", "--debug")
    assert "clusterTime" not in result.stdout + result.stderr, line
    assert files_under(folder) == []


@pytest.mark.parametrize("how", [("--debug",), ()], ids=["--debug", "CQRS_DEBUG=1"])
def test_debug_shows_the_whole_traceback(how, failing_read_store, tmp_path):
    result = run((*how, "dlq", "list"), tmp_path, CQRS_MONGO_URL=failing_read_store.mongo_url,
                 **({} if how else {"CQRS_DEBUG": "1"}))
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr, result.stderr
    assert "pymongo.errors.OperationFailure: internal server error" in result.stderr
