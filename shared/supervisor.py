"""`command-api --workers N` and `query-api --workers N`: N worker processes serving one port,
for a machine with more than one core (one Python process uses one).

One listening socket, bound by this parent and handed to every worker (what uvicorn's and
gunicorn's multi-worker modes do), rather than SO_REUSEPORT with a socket per worker:
- the port is bound once, before any worker starts, so a port in use is one error from one
  process, as with a single process, and `--port 0` means one port for every worker;
- connections wait in the parent's socket: a worker that dies or is replaced loses only those
  it had accepted, where SO_REUSEPORT resets every connection queued on the dead one's socket;
- a connection goes to a worker that is waiting for one, an idle one; SO_REUSEPORT hashes it
  to a worker whether that one is busy or not.

Workers are fresh interpreters (`python -m cli.api_worker`), not forks of this process: this
one has imported prometheus_client before PROMETHEUS_MULTIPROC_DIR was set, and the library
picks its multiprocess mode at import (shared/metrics.py); a fork would also inherit imported
clients and threads that are not meant to be shared.

Supervision is gunicorn's and uvicorn's: a worker that exits while the service runs is
replaced (its gauges are dropped, its counters stay); one that exits with STARTUP_FAILURE could
not start its app, as every replacement would fail the same way, so the service stops with
exit 1. A worker that keeps dying soon after it starts (a crash on every first request, memory
that runs out at once) is replaced after a growing pause (shared/backoff.py: 0.5 s, doubling,
at most 30 s), not every half second: each start costs a whole interpreter's import time.
On SIGTERM or SIGINT every worker gets SIGTERM, finishes the requests in flight (at most 10 s)
and exits; this process reaps each one (SIGKILL past STOP_GRACE_S), deletes the
metrics directory and returns 0.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from shared.backoff import Backoff
from shared.metrics import MULTIPROC_DIR, multiprocess_dir, process_exited

STARTUP_FAILURE = 3  # a worker's exit code when its app could not start (uvicorn's is 3 too)
STOP_GRACE_S = 15.0  # a worker's 10 s of graceful shutdown, and the time to exit after it
POLL_S = 0.5  # how soon an exited worker is replaced, and a signal acted on
STEADY_S = 30.0  # a worker that ran this long before it exited did not die of starting
RESTART_BACKOFF = Backoff(first_s=POLL_S, max_s=30.0)

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every worker serves; raises OSError when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=2048)


def serve_workers(factory: str, host: str, port: int, count: int) -> int:
    """Serve `host:port` with `count` processes serving the app `factory` ("module:function"
    taking the settings) until SIGTERM/SIGINT; the exit code of the service. Each worker's
    command line ends with the listening socket's file descriptor and this process's id
    (cli/api_worker.py)."""
    worker_argv = [sys.executable, "-m", "cli.api_worker", factory]
    with bind(host, port) as sock, multiprocess_dir() as metrics_dir:
        log.info("serving http://%s:%d with %d workers", host, sock.getsockname()[1], count)
        return Supervisor(worker_argv, sock, count, metrics_dir).run()


class Supervisor:
    def __init__(self, worker_argv: list[str], sock: socket.socket, count: int,
                 metrics_dir: str) -> None:
        self.worker_argv, self.sock, self.count = worker_argv, sock, count
        self.metrics_dir = metrics_dir
        self.workers: list[subprocess.Popen | None] = []  # None: waiting to be replaced
        self.started_at: list[float] = []
        self.restart_at: list[float] = []
        self.quick_exits: list[int] = []  # per slot: exits in a row, each soon after a start
        self.stop = threading.Event()
        self.failed = False

    def run(self) -> int:
        # The handlers only set the event: the loop below acts on it within POLL_S.
        previous = {sig: signal.signal(sig, lambda *_: self.stop.set())
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for index in range(self.count):  # one by one: a signal meanwhile stops those started
                self.workers.append(None)
                self.started_at.append(0.0)
                self.restart_at.append(0.0)
                self.quick_exits.append(0)
                self._start_one(index)
            while not self.stop.wait(POLL_S):
                self._replace_exited()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if self.failed else 0

    def _start_one(self, index: int) -> None:
        fd = self.sock.fileno()
        worker = subprocess.Popen(
            [*self.worker_argv, str(fd), str(os.getpid())], pass_fds=(fd,),
            env={**os.environ, MULTIPROC_DIR: self.metrics_dir})
        log.info("worker %d started", worker.pid)
        self.workers[index], self.started_at[index] = worker, time.monotonic()

    def _replace_exited(self) -> None:
        for index, worker in enumerate(self.workers):
            if worker is None:  # its predecessor died young: started once its pause is over
                if time.monotonic() >= self.restart_at[index]:
                    self._start_one(index)
                continue
            code = worker.poll()  # reaps it when it has exited
            if code is None or self.stop.is_set():  # a signal may have just stopped it
                continue
            process_exited(self.metrics_dir, worker.pid)
            if code == STARTUP_FAILURE:
                log.error("worker %d could not start its app; stopping the service", worker.pid)
                self.failed = True
                self.stop.set()
                return
            lived_s = time.monotonic() - self.started_at[index]
            self.quick_exits[index] = 0 if lived_s >= STEADY_S else self.quick_exits[index] + 1
            pause_s = restart_pause_s(self.quick_exits[index])
            log.warning("worker %d exited with code %d after %.1f s; starting another in %.1f s",
                        worker.pid, code, lived_s, pause_s)
            self.workers[index] = None
            self.restart_at[index] = time.monotonic() + pause_s
            if pause_s == 0:
                self._start_one(index)

    def _stop_all(self) -> None:
        workers = [worker for worker in self.workers if worker is not None]
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in workers:
            try:
                worker.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %d still runs %.0f s after SIGTERM; killing it",
                            worker.pid, STOP_GRACE_S)
                worker.kill()
                worker.wait()
            process_exited(self.metrics_dir, worker.pid)
        log.info("every worker stopped")


def restart_pause_s(quick_exits: int) -> float:
    """How long a worker's slot waits before its next start: none after a worker that ran
    steadily (`quick_exits` 0), then RESTART_BACKOFF for each exit in a row soon after a
    start."""
    return RESTART_BACKOFF.delay_s(quick_exits) if quick_exits else 0.0
