"""The Compose Specification's JSON Schema, to check docker-compose.yml on machines without Docker.

Docker Compose validates every file against this schema before doing anything else, so a key it
does not know (`restartt:`, a stray top-level key) is rejected there; checking the file against the
same schema in the suite catches that without a Docker CLI. The schema is not copied into this
repository, where it would silently go stale: it comes from a registry package, the Go module
github.com/compose-spec/compose-go/v2 (the loader Docker Compose is built on), which embeds it as
schema/compose-spec.json. `go mod download` fetches that one pinned version from the Go module
proxy into the Go module cache (outside the repository); later runs find it there offline.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

COMPOSE_GO_MODULE = "github.com/compose-spec/compose-go/v2"
# Bump deliberately: a newer schema may accept or reject keys differently. v2.17.0 needs Go 1.26.11.
COMPOSE_GO_VERSION = "v2.16.2"
SCHEMA_IN_MODULE = "schema/compose-spec.json"


@functools.cache
def compose_schema() -> tuple[dict[str, Any], None] | tuple[None, str]:
    """`(schema, None)`, or `(None, why it cannot be had)` in one line."""
    if shutil.which("go") is None:
        return None, "`go` is not on PATH"
    module = f"{COMPOSE_GO_MODULE}@{COMPOSE_GO_VERSION}"
    try:
        # From a neutral directory, so no go.mod or go.work around the caller has a say.
        result = subprocess.run(
            ["go", "mod", "download", "-json", module],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=tempfile.gettempdir(),
        )
    except subprocess.TimeoutExpired:
        return None, f"`go mod download {module}` did not finish within 180 s"
    try:
        info = json.loads(result.stdout)
    except ValueError:
        info = {}
    if result.returncode != 0 or info.get("Error") or not info.get("Dir"):
        why = (info.get("Error") or result.stderr).strip().splitlines() or ["no output"]
        return None, f"`go mod download {module}` failed: {why[0]}"
    path = Path(info["Dir"]) / SCHEMA_IN_MODULE
    if not path.is_file():
        return None, f"{module} has no {SCHEMA_IN_MODULE} (looked in {path})"
    return json.loads(path.read_text(encoding="utf-8")), None
