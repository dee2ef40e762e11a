"""One worker process of `command-api --workers N` / `query-api --workers N`, started by
shared/supervisor.py as `python -m cli.api_worker MODULE:FACTORY FD PARENT_PID`.

It reads the settings as its parent did (the environment, and a running dev stack's file),
builds the app with the factory, and serves the listening socket FD its parent bound, until
SIGTERM/SIGINT, or until the parent is gone: like a gunicorn worker it watches its parent, so
that a supervisor killed with -9 leaves no worker serving on, unsupervised.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import socket
import sys
from collections.abc import Callable

from shared.observability import bind
from shared.stopping import sleep_unless_stopped
from shared.supervisor import STARTUP_FAILURE
from shared.worker import InLoopServer, run, start_serving, stop_on_signals

log = logging.getLogger(__name__)

PARENT_CHECK_S = 1.0


def load_factory(path: str) -> Callable:
    """`module:function`: an app factory taking the settings."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


async def serve(app, sock: socket.socket, parent_pid: int) -> int:
    stop = stop_on_signals()
    server = InLoopServer(app, lifespan="on", sock=sock)
    try:
        await start_serving(server)
    except Exception as exc:  # the lifespan failed: a replacement would fail the same way
        log.error("the worker could not start: %s", exc)
        return STARTUP_FAILURE
    watch = asyncio.create_task(_stop_when_orphaned(stop, parent_pid))
    await stop.wait()
    watch.cancel()
    await server.stop()
    return 0


async def _stop_when_orphaned(stop: asyncio.Event, parent_pid: int) -> None:
    while not stop.is_set():
        if os.getppid() != parent_pid:
            log.warning("the supervising process is gone; stopping")
            stop.set()
            return
        await sleep_unless_stopped(stop, PARENT_CHECK_S)


def main() -> None:
    factory, fd, parent_pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    from cli.settings import api_settings_or_exit

    try:
        settings = api_settings_or_exit()  # also sets up logging as the parent's
        app = load_factory(factory)(settings)
    except BaseException as exc:  # whatever fails here fails in every replacement too
        log.error("the worker could not start: %r", exc)
        sys.exit(STARTUP_FAILURE)
    bind(worker=str(os.getpid()))  # every log line says which worker wrote it
    sys.exit(run(serve(app, socket.socket(fileno=fd), parent_pid)))


if __name__ == "__main__":
    main()
