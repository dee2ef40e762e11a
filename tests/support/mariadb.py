"""A MariaDB server of the test's own, to stop and start again under load: the suite's shared
server (CQRS_TEST_MYSQL_URL) serves the other worker's tests and must never be restarted.
Built from the same binaries (`mariadb-install-db`, `mariadbd`), with its data folder in the
test's tmp_path, no grant tables (anyone may log in: it listens on 127.0.0.1 only, for as
long as the test runs), and a few seconds to start."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from cli.servers.process import ServerProcess


def why_unavailable() -> str | None:
    missing = [b for b in ("mariadbd", "mariadb-install-db")
               if shutil.which(b) is None and not Path(f"/usr/sbin/{b}").exists()]
    return f"no {' or '.join(missing)} on this machine" if missing else None


def _binary(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


class PrivateMariaDB(ServerProcess):
    name = "a private MariaDB server"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder / "mariadb.log")
        self.folder = Path(folder)
        self.datadir = self.folder / "data"

    @property
    def url(self) -> str:
        return f"mysql+asyncmy://root@127.0.0.1:{self.port}/cqrs"

    def _common(self) -> list[str]:
        args = ["--no-defaults", f"--datadir={self.datadir}"]
        if os.geteuid() == 0:
            args.append("--user=root")  # mariadbd refuses to run as root unless told so
        return args

    def prepare(self) -> None:
        if self.datadir.exists():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            subprocess.run([_binary("mariadb-install-db"), *self._common(),
                            "--auth-root-authentication-method=normal", "--skip-test-db"],
                           stdout=log, stderr=log, check=True, timeout=120)

    def argv(self) -> list[str]:
        return [_binary("mariadbd"), *self._common(), "--skip-grant-tables",
                "--bind-address=127.0.0.1", f"--port={self.port}",
                f"--socket={self.folder / 'mariadb.sock'}",
                f"--pid-file={self.folder / 'mariadb.pid'}",
                "--skip-log-bin", "--innodb-buffer-pool-size=32M",
                "--innodb-log-file-size=16M", "--skip-name-resolve"]
