"""The system's processes started from the console script, as a deployment runs them: each
reads its settings from the CQRS_* environment, serves its ops port, and can be killed with -9
or stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from pydantic import SecretStr

from cli.servers.process import free_port
from shared.config import Settings

SCRIPT = Path(sys.executable).with_name("cqrs-accounts")


def process_env(settings: Settings) -> dict[str, str]:
    """The settings as the CQRS_* environment a process reads them from."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is None:
            continue
        env[f"CQRS_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


class Process:
    def __init__(self, role: str, settings: Settings, log_dir: Path,
                 name: str | None = None, args: tuple[str, ...] = ()) -> None:
        self.role, self.env, self.log_dir = role, process_env(settings), log_dir
        self.args = args  # after `ROLE --port PORT`
        self.name = name or role  # several processes of one role keep separate logs
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.log_dir / f"{self.name}.log", "ab")  # noqa: SIM115 (the child owns it)
        self.process = subprocess.Popen([str(SCRIPT), self.role, "--port", str(self.port),
                                         *self.args],
                                        env=self.env, stdout=log, stderr=log)

    async def ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline:
                assert self.process.poll() is None, f"{self.role} exited: {self.tail()}"
                try:
                    if (await http.get(f"http://127.0.0.1:{self.port}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.role} not ready: {self.tail()}")

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no cleanup at all
        self.process.wait()

    def terminate(self, timeout_s: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"{self.role} ignored SIGTERM for {timeout_s}s") from None

    def tail(self) -> str:
        return (self.log_dir / f"{self.name}.log").read_text(errors="replace")[-3000:]


