"""The running dev stack's settings, for the operator commands of a second terminal.

`make dev` writes the effective settings of its stack (where its write model, broker and read
store are, and its development signing secret) to `.data/dev.env` while it runs, and removes
the file when it stops. Every `cqrs-accounts` command started from the project folder reads the
file when it is there; a variable set in the environment still wins over it. So `status`,
`verify`, `dlq list` and the rest work against `make dev` with nothing set."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR = Path(".data")
FILE_NAME = "dev.env"
# What operator commands need to find the stack and sign tokens it accepts.
SHARED = ("CQRS_DATABASE_URL", "CQRS_KAFKA_BOOTSTRAP_SERVERS", "CQRS_KAFKA_ENABLE_IDEMPOTENCE",
          "CQRS_KAFKA_TOPIC", "CQRS_KAFKA_CONSUMER_GROUP", "CQRS_MONGO_URL",
          "CQRS_MONGO_DATABASE", "CQRS_AUTH_DISABLED", "CQRS_AUTH_JWT_SECRET")


def path(data_dir: Path = DATA_DIR) -> Path:
    return Path(data_dir) / FILE_NAME


def write(data_dir: Path, env: dict[str, str]) -> Path:
    """Write the stack's settings (readable by its owner only: it holds the dev secret)."""
    target = path(data_dir)
    lines = [f"# written by `cqrs-accounts dev` (pid {os.getpid()}); removed when it stops\n"]
    lines += [f"{name}={env[name]}\n" for name in SHARED if env.get(name)]
    partial = target.with_suffix(".partial")
    partial.write_text("".join(lines))
    partial.chmod(0o600)
    partial.replace(target)
    return target


def remove(data_dir: Path) -> None:
    path(data_dir).unlink(missing_ok=True)


def present() -> Path | None:
    """The file of a dev stack running from this folder, if any."""
    candidate = path()
    return candidate if candidate.is_file() else None


def value_from_file(name: str) -> str | None:
    found = present()
    if found is None:
        return None
    for line in found.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == name:
            return value.strip()
    return None
