"""`cqrs-accounts --help` (and a command's own help) loads typer and rich, not the services'
stacks: the CLI imports what a command runs with when it runs (cli/main.py), so an operator's
`--help`, `status`, `verify` does not wait for FastAPI, SQLAlchemy or the drivers to load.
And the database layer an operator command runs with does not pull in the HTTP layer. Checked in
a fresh interpreter, where nothing else has imported them; no timing, only what is imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Each of them was imported by `--help` once, for a second or so in all. (Not pydantic itself:
# typer imports it to read a command's options.)
NOT_FOR_HELP = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "pydantic_settings", "pymongo",
                "aiokafka", "shared.config", "cli.dependencies")
HTTP_LAYER = ("fastapi", "uvicorn", "shared.http", "shared.worker")

PROBE = """
import json, sys
from typer.testing import CliRunner
from cli.main import app

for args in (["--help"], ["status", "--help"], ["verify", "--help"], ["dlq", "list", "--help"]):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0 and "Usage" in result.output, (args, result.output)
after_help = sorted(sys.modules)

import cli.dependencies, cli.failures, command_service.db.errors, operations.status  # noqa
after_status = sorted(sys.modules)
print(json.dumps({"help": after_help, "status": after_status}))
"""


def loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return [name for name in names
            if any(m == name or m.startswith(f"{name}.") for m in modules)]


def test_help_imports_no_service_stack_and_operator_commands_no_http_layer():
    probe = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    modules = json.loads(probe.stdout.splitlines()[-1])
    assert loaded(modules["help"], NOT_FOR_HELP) == [], "import them inside the command"
    assert loaded(modules["status"], HTTP_LAYER) == [], "a database module imports the HTTP layer"
