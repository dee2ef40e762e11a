"""The development signing secret of `cqrs-accounts dev` (`make dev`), kept under .data/.

It belongs to the CLI, not to the services: only the dev stack makes it (so a restarted stack
accepts the tokens it printed before) and only `cqrs-accounts token` reads it back; a service
is simply given the secret through CQRS_AUTH_JWT_SECRET.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

DEV_SECRET_FILE = "auth-secret"


def dev_secret(data_dir: Path) -> str:
    """The development secret of `cqrs-accounts dev`: made once, kept under the data directory
    (readable by its owner only), so a restarted stack accepts the tokens it printed before."""
    path = Path(data_dir) / DEV_SECRET_FILE
    if path.exists():
        secret = path.read_text().strip()
        if len(secret) >= 32:
            return secret
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(secret + "\n")
    return secret
