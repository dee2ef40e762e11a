"""A backend server run as a child process on a port of ours: start it and wait until it
answers, stop it with SIGTERM then SIGKILL, or kill it outright as a crash would.

Every launcher (the Kafka and Tansu brokers, the SecantusDB read store) is one of these, so the
dev stack, the tests and the bench start and stop backends one way."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

STOP_TIMEOUT_S = 10.0
START_TIMEOUT_S = 90.0


class ServerFailed(RuntimeError):
    """The server exited, or did not answer in time; the message points at its log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on the port now, judged the way uvicorn binds
    (SO_REUSEADDR): a port whose last connections linger in TIME_WAIT is free, one that
    something listens on is not."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def answers(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
        return True
    return False


def stop_process(process: subprocess.Popen | None, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout_s`. A child that leads its
    own session is stopped with its whole process group (SecantusDB's launcher leaves a child
    serving after its own pid is killed)."""
    if process is None or process.poll() is not None:
        return
    _signal(process, signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        _signal(process, signal.SIGKILL)
        process.wait()


def _signal(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, sig)
            return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)


class ServerProcess:
    """A server on a fixed port, started in its own session with its output in `log_path`;
    it can be stopped and started again on the same port (and, where it keeps data, with the
    same data)."""

    name = "server"

    def __init__(self, log_path: Path, port: int | None = None) -> None:
        self.log_path = Path(log_path)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Work before the first start (fetching, formatting storage); nothing by default."""

    def is_ready(self) -> bool:
        return answers(self.port)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        self.prepare()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the handle
            self.process = subprocess.Popen(self.argv(), stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerFailed(f"{self.name} exited with code {self.process.returncode}; "
                                   f"its log: {self.log_path}")
            if self.is_ready():
                return
            time.sleep(0.05)
        self.stop()
        raise ServerFailed(f"{self.name} did not answer on port {self.port} within "
                           f"{timeout_s:.0f}s; its log: {self.log_path}")

    async def astart(self, timeout_s: float = START_TIMEOUT_S) -> None:
        await asyncio.to_thread(self.start, timeout_s)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        stop_process(self.process, timeout_s)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean-up at all."""
        if self.process is not None and self.process.poll() is None:
            _signal(self.process, signal.SIGKILL)
            self.process.wait()
