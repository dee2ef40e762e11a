"""The AsyncAPI 3.0.0 specification's own JSON Schema, to check docs/events/asyncapi.json.

Like the Compose Specification's schema (compose_schema.py), it is not copied into the
repository, where it would silently go stale: it comes from the registry package the AsyncAPI
parser and Studio validate with, @asyncapi/specs on npm. `npm pack` fetches that one pinned
version once into .cache/ (ignored); later runs find it there offline.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

SPECS_PACKAGE = "@asyncapi/specs"
SPECS_VERSION = "6.11.1"  # bump deliberately: a newer bundle may judge documents differently
SCHEMA_IN_PACKAGE = "package/schemas/3.0.0-without-$id.json"
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "asyncapi-specs" / SPECS_VERSION


@functools.cache
def asyncapi_schema() -> tuple[dict[str, Any], None] | tuple[None, str]:
    """`(schema, None)`, or `(None, why it cannot be had)` in one line."""
    path = CACHE / SCHEMA_IN_PACKAGE
    if not path.is_file():
        why = _fetch()
        if why:
            return None, why
    return json.loads(path.read_text(encoding="utf-8")), None


def _fetch() -> str | None:
    if shutil.which("npm") is None:
        return "`npm` is not on PATH"
    package = f"{SPECS_PACKAGE}@{SPECS_VERSION}"
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(["npm", "pack", package, "--silent", "--pack-destination",
                                 str(CACHE)], capture_output=True, text=True, timeout=180,
                                cwd=CACHE)
    except subprocess.TimeoutExpired:
        return f"`npm pack {package}` did not finish within 180 s"
    tarballs = sorted(CACHE.glob("*.tgz"))
    if result.returncode != 0 or not tarballs:
        why = result.stderr.strip().splitlines() or ["no output"]
        return f"`npm pack {package}` failed: {why[-1]}"
    with tarfile.open(tarballs[-1]) as archive:
        archive.extract(SCHEMA_IN_PACKAGE, CACHE, filter="data")
    return None
