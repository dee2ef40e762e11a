"""The console script as a user runs it: configuration errors, migrate, and `dev` end to end."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from cli.servers.process import free_port

SCRIPT = Path(sys.executable).with_name("cqrs-accounts")


def run_cli(*args: str, env: dict | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_the_console_script_is_installed_and_lists_every_process():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("dev", "migrate", "command-api", "query-api", "relay", "projector"):
        assert command in result.stdout


@pytest.mark.parametrize("variable,value", [
    ("CQRS_DATABASE_URL", "postgres://nope"),
    ("CQRS_KAFKA_ENABLE_IDEMPOTENCE", "perhaps"),
    ("CQRS_RELAY_BATCH_SIZE", "-3"),
    ("CQRS_MONGO_URL", "http://localhost"),
])
def test_a_bad_setting_stops_the_process_with_one_line_naming_it(variable, value):
    result = run_cli("migrate", env={variable: value})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert variable in lines[0] and "Traceback" not in result.stderr


def test_migrate_creates_the_write_model_on_a_fresh_database(tmp_path):
    database = tmp_path / "fresh.db"
    result = run_cli("migrate", env={"CQRS_DATABASE_URL": f"sqlite+aiosqlite:///{database}"})
    assert result.returncode == 0, result.stderr
    tables = set(sa.inspect(sa.create_engine(f"sqlite:///{database}")).get_table_names())
    assert {"customers", "accounts", "commands", "events", "outbox", "relay_lease"} <= tables


def test_dev_refuses_to_start_when_its_port_is_taken(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        result = run_cli("dev", "--command-port", str(taken), "--query-port", str(free_port()),
                         "--data-dir", str(tmp_path))
    assert result.returncode == 1
    assert f"port {taken}" in result.stderr and "Traceback" not in result.stderr


def start_dev(data_dir: Path, command_port: int, query_port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [str(SCRIPT), "dev", "--command-port", str(command_port), "--query-port",
         str(query_port), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_banner(process: subprocess.Popen, timeout_s: float = 120) -> str:
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if "Ctrl-C stops everything" in line:
            return "".join(seen)
    raise AssertionError("dev did not come up:\n" + "".join(seen))


def stop_dev(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()


def banner_token(banner: str) -> dict[str, str]:
    """The admin token `dev` prints (`export TOKEN=...`), as request headers."""
    found = re.search(r"export TOKEN=(\S+)", banner)
    assert found, f"no admin token in the banner:\n{banner}"
    return {"Authorization": f"Bearer {found.group(1)}"}


def eventually_get(url: str, check, timeout_s: float = 10.0,
                   headers: dict | None = None) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        response = httpx.get(url, headers=headers)
        if check(response) or time.monotonic() > deadline:
            return response
        time.sleep(0.02)


@pytest.mark.slow
def test_dev_runs_the_whole_stack_stops_cleanly_and_keeps_its_data(tmp_path):
    command_port, query_port = free_port(), free_port()
    commands, queries = f"http://127.0.0.1:{command_port}", f"http://127.0.0.1:{query_port}"
    dev = start_dev(tmp_path, command_port, query_port)
    try:
        banner = wait_for_banner(dev)
        assert commands in banner and queries in banner and "curl" in banner
        assert f"{queries}/console" in banner
        assert httpx.get(f"{queries}/console").status_code == 200  # the page needs no token
        auth = banner_token(banner)
        # Authentication is on in dev: no token, no entry.
        assert httpx.post(f"{commands}/v1/customers", json={
            "name": "No Token", "email": "none@example.com"}).status_code == 401
        customer = httpx.post(f"{commands}/v1/customers", headers=auth,
                              json={"name": "Dev User", "email": "dev@example.com"}).json()
        account = httpx.post(f"{commands}/v1/accounts", headers=auth, json={
            "customer_id": customer["customer_id"], "type": "checking", "currency": "INR",
            "initial_deposit": "10.00"}).json()
        httpx.post(f"{commands}/v1/accounts/{account['account_id']}/withdrawals", headers=auth,
                   json={"amount": "4.00"}).raise_for_status()
        view = eventually_get(f"{queries}/v1/customers/{customer['customer_id']}",
                              lambda r: r.status_code == 200
                              and r.json()["summary"]["balances"] == {"INR": "6.00"},
                              headers=auth)
        assert view.json()["summary"]["balances"] == {"INR": "6.00"}, view.text
    finally:
        code = stop_dev(dev)
    assert code == 0
    remaining = dev.stdout.read()
    assert "Traceback" not in remaining, remaining
    assert (tmp_path / "projected-position").exists()
    assert _no_process_uses(tmp_path)

    # A second start reuses the data: the write model and the read models survive, and the
    # new (empty) broker is re-fed what the read side had not applied yet. The development
    # secret is kept too, so the first start's token is still accepted.
    dev = start_dev(tmp_path, command_port, query_port)
    try:
        wait_for_banner(dev)
        again = httpx.get(f"{queries}/v1/customers/{customer['customer_id']}", headers=auth)
        assert again.status_code == 200 and again.json()["summary"]["balances"] == {"INR": "6.00"}
        deposit = httpx.post(f"{commands}/v1/accounts/{account['account_id']}/deposits",
                             headers=auth, json={"amount": "1.00"})
        assert deposit.status_code == 201 and deposit.json()["version"] == 3
        view = eventually_get(f"{queries}/v1/accounts/{account['account_id']}",
                              lambda r: r.json().get("version") == 3, headers=auth)
        assert view.json()["balance"] == "7.00"
    finally:
        assert stop_dev(dev) == 0


def _no_process_uses(data_dir: Path) -> bool:
    """No child of the stopped stack is left running with our data directory."""
    pattern = re.escape(str(data_dir))
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return not any(re.search(pattern, line) for line in listing.splitlines()
                   if "pytest" not in line)



def operator(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """An operator command from the project folder of a running `make dev`, with no CQRS_*
    variable in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CQRS_")}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=cwd)


@pytest.mark.slow
def test_operator_commands_find_the_running_dev_stack_with_no_environment(tmp_path):
    command_port, query_port = free_port(), free_port()
    dev = subprocess.Popen(
        [str(SCRIPT), "dev", "--command-port", str(command_port), "--query-port",
         str(query_port)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env={k: v for k, v in os.environ.items() if not k.startswith("CQRS_")})
    try:
        banner = wait_for_banner(dev)
        assert "cqrs-accounts status" in banner  # how to run an operator command
        assert (tmp_path / ".data" / "dev.env").exists()
        token = operator("token", "--scope", "admin", cwd=tmp_path)
        assert token.returncode == 0, token.stderr
        auth = {"Authorization": f"Bearer {token.stdout.strip()}"}
        customer = httpx.post(f"http://127.0.0.1:{command_port}/v1/customers", headers=auth,
                              json={"name": "Second Terminal", "email": "t2@example.com"})
        assert customer.status_code == 201, customer.text  # the stack accepts the token
        view = eventually_get(
            f"http://127.0.0.1:{query_port}/v1/customers/{customer.json()['customer_id']}",
            lambda r: r.status_code == 200, headers=auth)
        assert view.status_code == 200

        expected = {
            ("status",): (0, "outbox backlog"),
            ("verify",): (0, "no drift"),
            ("verify", "--repair"): (0, "no drift"),
            ("rebuild",): (0, "rebuilt from 1 events"),
            ("dlq", "list"): (0, "0 parked"),
            ("dlq", "show", "no-such-entry"): (1, "no dead letter"),
            ("dlq", "retry"): (0, "applied 0"),
            ("dlq", "discard", "no-such-entry"): (0, "discarded 0"),
        }
        for args, (code, text) in expected.items():
            result = operator(*args, cwd=tmp_path)
            assert (result.returncode, text in result.stdout) == (code, True), (
                args, result.stdout, result.stderr)

        resend = subprocess.Popen(  # a standby relay that first queues the events again
            [str(SCRIPT), "relay", "--resend-from", "1"], cwd=tmp_path, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("CQRS_")})
        try:
            seen = ""
            deadline = time.monotonic() + 60
            while "queued 1 event(s)" not in seen and time.monotonic() < deadline:
                seen += resend.stdout.readline()
            assert "queued 1 event(s)" in seen, seen
        finally:
            resend.send_signal(signal.SIGTERM)
            resend.wait(30)
    finally:
        assert stop_dev(dev) == 0
    assert not (tmp_path / ".data" / "dev.env").exists()  # the stack is gone, so is its file
    # With its file gone, a command no longer knows where a stack is, and says so in one line,
    # whatever else serves the default ports (another clone's stack, a developer's MongoDB).
    after = operator("status", cwd=tmp_path)
    assert after.returncode == 1, after.stderr
    assert after.stdout == "" and after.stderr.startswith("no stack to work on"), after.stderr
    assert len(after.stderr.splitlines()) == 1, after.stderr


def test_schema_check_passes_on_the_repository_and_names_what_is_out_of_date(tmp_path):
    from tests.support.published_events import EVENTS_DOCS

    assert run_cli("schema", "--check", "--directory", str(EVENTS_DOCS)).returncode == 0
    stale = tmp_path / "events"
    stale.mkdir()
    (stale / "AccountOpened.v2.schema.json").write_text("{}")
    (stale / "AccountRenamed.v1.schema.json").write_text("{}")
    result = run_cli("schema", "--check", "--directory", str(stale))
    assert result.returncode == 1
    assert f"{stale}/AccountOpened.v2.schema.json differs from the code" in result.stdout
    assert f"{stale}/AccountRenamed.v1.schema.json is no longer generated" in result.stdout
    assert f"{stale}/asyncapi.json is missing" in result.stdout
    assert "run `cqrs-accounts schema`" in result.stderr

    written = run_cli("schema", "--directory", str(stale))
    assert written.returncode == 0, written.stderr
    assert run_cli("schema", "--check", "--directory", str(stale)).returncode == 0
    assert not (stale / "AccountRenamed.v1.schema.json").exists()
