"""SecantusDB, the embedded read store: a MongoDB-wire server on WiredTiger (PyPI `SecantusDB`).
It is GPL-2.0, so it only ever runs as its own process and is never imported by project code."""

from __future__ import annotations

import sys
from pathlib import Path

from cli.servers.process import ServerProcess


class SecantusReadStore(ServerProcess):
    name = "the SecantusDB read store"

    def __init__(self, storage: Path, log_path: Path, port: int | None = None) -> None:
        super().__init__(log_path, port)
        self.storage = Path(storage)

    @property
    def mongo_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port",
                str(self.port), "--storage-path", str(self.storage), "--log-level", "WARNING"]
