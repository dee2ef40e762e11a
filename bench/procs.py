"""Starting the system's processes for a measurement, and reading their /metrics."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.http import HttpClient
from cli.servers.process import free_port
from shared.config import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        env[f"CQRS_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    # The bench measures the pipeline, not authentication (docs/api.md: CQRS_AUTH_DISABLED).
    env.setdefault("CQRS_AUTH_DISABLED", "true")
    return env


class Service:
    """`python -m bench.service ROLE` in its own process, ready when /readyz answers 200.
    `module` serves another app the same way (`python -m MODULE --port N`); `workers` is
    passed on as `--workers N` only when it is not 1, so a server without that option
    still starts."""

    def __init__(self, role: str, settings: Settings, log_dir: Path, *,
                 module: str = "bench.service", workers: int = 1) -> None:
        self.role, self.settings, self._log_dir = role, settings, log_dir
        self.module, self.workers = module, workers
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.http = HttpClient("127.0.0.1", self.port)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    async def start(self, timeout_s: float = 60.0) -> Service:
        log = open(self._log_dir / f"{self.role}.log", "ab")  # noqa: SIM115 (child owns it)
        role = [self.role] if self.module == "bench.service" else []
        workers = ["--workers", str(self.workers)] if self.workers != 1 else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, *role, "--port", str(self.port), *workers],
            env=settings_env(self.settings), stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.role} exited with {self.process.returncode}; see "
                                   f"{self._log_dir / (self.role + '.log')}")
            try:
                status, _, _ = await self.http.get("/readyz")
                if status == 200:
                    return self
            except OSError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.role} was not ready within {timeout_s:.0f}s")

    async def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        """The value of one sample of the process's Prometheus /metrics (0 when absent)."""
        _, _, body = await self.http.get("/metrics")
        return sample_value(body.decode(), name, labels or {})

    async def stop(self) -> None:
        await self.http.aclose()
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.process.wait, 20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)


def sample_value(text: str, name: str, labels: dict[str, str]) -> float:
    """Sum of the samples called `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric != name:
            continue
        found = dict(part.split("=", 1) for part in label_text.rstrip("}").split(",") if part)
        found = {k: v.strip('"') for k, v in found.items()}
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total
