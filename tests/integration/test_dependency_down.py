"""Every CLI command that cannot reach a dependency it needs prints one line naming the
dependency, the address it tried and the setting that configures it, and exits non-zero:
never a traceback. Each command is run as a user runs it (the console script), with one
dependency pointed at an address where nothing listens and the others up."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.backends import BROKER_KINDS
from tests.support.ports import closed_port
from tests.support.processes import SCRIPT, process_env

DEPENDENCIES = {
    "database": ("CQRS_DATABASE_URL", "the write database"),
    "broker": ("CQRS_KAFKA_BOOTSTRAP_SERVERS", "the broker"),
    "read_store": ("CQRS_MONGO_URL", "the read store"),
}
# What each command touches (a command is only tested against what it needs).
NEEDS = {
    ("status",): ["database", "read_store", "broker"],
    ("status", "--json"): ["database", "read_store"],  # the broker: the test at the end
    ("verify",): ["database", "read_store"],
    ("verify", "--repair"): ["database", "read_store"],
    ("rebuild",): ["database", "read_store"],
    ("dlq", "list"): ["read_store"],
    ("dlq", "show", "no-such-entry"): ["read_store"],
    ("dlq", "retry"): ["read_store"],
    ("dlq", "discard", "no-such-entry"): ["read_store"],
    ("migrate",): ["database"],
    ("relay", "--resend-from", "1"): ["database", "broker"],
    ("command-api", "--port", "0"): ["database"],
    ("query-api", "--port", "0"): ["read_store"],
    ("relay", "--port", "0"): ["database", "broker"],
    ("projector", "--port", "0"): ["broker", "read_store"],
}
CASES = [pytest.param(command, dependency, id=f"{' '.join(command)}-{dependency}-down")
         for command, needed in NEEDS.items() for dependency in needed]


def down_address(dependency: str, port: int) -> str:
    return {"database": f"mysql+asyncmy://root:@127.0.0.1:{port}/nowhere",
            "broker": f"127.0.0.1:{port}",
            "read_store": f"mongodb://127.0.0.1:{port}/?directConnection=true"}[dependency]


# One write model and one broker suffice: what is tested is the command line, not a backend.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("broker", BROKER_KINDS[:1], indirect=True)
@pytest.mark.parametrize("command,dependency", CASES)
def test_a_command_whose_dependency_is_down_says_so_in_one_line(
        command, dependency, settings, tmp_path):
    setting, name = DEPENDENCIES[dependency]
    folder = tmp_path / "cwd"  # the test's write model lives in tmp_path
    folder.mkdir()
    with closed_port() as port:
        # At the default log level: the drivers' retries must not reach the screen either.
        env = {**process_env(settings), setting: down_address(dependency, port),
               "CQRS_MONGO_TIMEOUT_MS": "500", "CQRS_DATABASE_TIMEOUT_S": "1",
               "CQRS_STARTUP_WAIT_S": "1", "CQRS_LOG_LEVEL": "INFO"}
        result = subprocess.run([str(SCRIPT), *command], env=env, cwd=folder,
                                capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith(f"cannot reach {name} at 127.0.0.1:{port}"), output
    assert f"({setting})" in lines[0], output
    # At most a progress bar besides (rebuild's), and nothing left behind.
    assert len([line for line in output.splitlines() if line.strip()]) <= 3, output
    assert list(folder.iterdir()) == [], output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("broker", BROKER_KINDS[:1], indirect=True)
def test_status_json_with_the_broker_down_gives_every_other_figure_then_the_line(
        settings, tmp_path):
    """A script still gets the figures that could be read, and `broker_error` says what the
    one line says, not the client's own wording of it."""
    with closed_port() as port:
        env = {**process_env(settings), "CQRS_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
               "CQRS_LOG_LEVEL": "INFO"}
        result = subprocess.run([str(SCRIPT), "status", "--json"], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    figures = json.loads(result.stdout)
    line = result.stderr.strip()
    assert line.startswith(f"cannot reach the broker at 127.0.0.1:{port}"), result.stderr
    assert figures["outbox"]["unsent"] == 0 and figures["projector"]["lag"] is None, figures
    assert figures["projector"]["broker_error"] == line, figures
