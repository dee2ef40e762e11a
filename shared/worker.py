"""What the two background workers (relay, projector) share: the runner that gives both their
shape (`run_worker`), their small HTTP server for /healthz, /readyz and /metrics, and a stop
event set by SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from shared.http import ReadinessCheck, health_router
from shared.stopping import sleep_unless_stopped

T = TypeVar("T")

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):
        """The process owns its signals (`stop_on_signals`); uvicorn must not take them, nor
        re-raise them after shutdown (which would turn a clean exit into a signal death)."""
        yield


class InLoopServer:
    """uvicorn serving an ASGI app inside the running event loop; `port=0` binds any free
    port. Workers serve their ops endpoints this way; tests serve the APIs this way. Given
    `sock`, it serves that listening socket instead of binding one (a worker of `--workers N`
    serves the socket its parent bound: shared/supervisor.py)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, lifespan: str = "off",
                 keep_alive_s: float = 5, sock: socket.socket | None = None):
        self._server = _Server(uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan=lifespan,
            timeout_graceful_shutdown=10, timeout_keep_alive=keep_alive_s,
        ))
        self._sockets = [sock] if sock is not None else None
        self._task: asyncio.Task | None = None
        self.port: int | None = None

    async def start(self) -> int:
        self._task = asyncio.create_task(self._server.serve(self._sockets))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raise the bind error
                raise RuntimeError("the HTTP server stopped while starting (see the log above)")
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._task is None:
            return
        # Responses that last as long as their client does (the query service's event
        # streams) end first: uvicorn would wait its whole graceful timeout for them.
        drain = getattr(getattr(self._server.config.app, "state", None), "drain", None)
        if drain is not None:
            drain()
        self._server.should_exit = True
        await self._task


class OpsServer(InLoopServer):
    """A worker's /healthz, /readyz and /metrics."""

    def __init__(self, title: str, checks: dict[str, ReadinessCheck], host: str, port: int):
        app = FastAPI(title=title, docs_url=None, redoc_url=None)
        app.include_router(health_router(checks))
        super().__init__(app, host, port)


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, on uvloop where it is installed (uvicorn[standard] brings it on Linux and
    macOS): its event loop costs a process's network and callback handling about half as much
    CPU, which is most of what an API process does besides our code."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def serve_app(app, host: str, port: int) -> None:
    """An HTTP service as a process: serve until SIGTERM/SIGINT, then finish the requests in
    flight (at most 10 s) and return, so the process exits 0."""
    stop = stop_on_signals()
    server = InLoopServer(app, host, port, lifespan="on")
    await start_serving(server)
    await stop.wait()
    await server.stop()


async def start_serving(server: InLoopServer) -> None:
    """Start an API process's server, then take what starting it built out of the cyclic
    collector's care. Modules, the app and its routes, pydantic models and the pools live as
    long as the process, yet every full collection walked all of them again: a pause of tens
    of milliseconds every few seconds under load. On MariaDB at concurrency 32 that pause was
    most of a deposit's p99 (107 ms before, 44-49 ms after; the bare endpoint's is 49-50 ms)
    and 8% of its CPU. The startup's garbage is collected first: frozen objects are never
    collected."""
    await server.start()
    gc.collect()
    gc.freeze()


def stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def every(seconds: float, job: Callable[[], Awaitable[object]], stop: asyncio.Event,
                what: str) -> None:
    """Run `job` every `seconds` until `stop` is set. A failure (a dependency away) is logged
    and the next run tries again: a side job never ends its process."""
    while not stop.is_set():
        await sleep_unless_stopped(stop, seconds)
        if stop.is_set():
            return
        try:
            await job()
        except Exception as exc:
            log.warning("%s failed: %s", what, exc.__class__.__name__)


async def run_worker(name: str, probes: dict[str, Callable[[], Awaitable[None]]], host: str,
                     port: int, stop: asyncio.Event, *, start: Callable[[], Awaitable[T]],
                     work: Callable[[T], Awaitable[None]],
                     close: Callable[[T | None], Awaitable[None]]) -> None:
    """The shape of both workers (relay and projector). The ops port comes first, so /healthz
    answers while dependencies are awaited; `start` is retried with backoff until it succeeds
    (the broker or a store may come up after us) or `stop` is set; `work` runs until `stop`;
    `close` gets what `start` returned (None if it never succeeded) and runs in every case."""
    ops = OpsServer(f"cqrs-accounts {name}", probes, host, port)
    bound = await ops.start()
    log.info("%s ops endpoints on http://%s:%d (/healthz /readyz /metrics)", name, host, bound)
    started: T | None = None
    try:
        async for attempt in AsyncRetrying(retry=retry_if_exception_type(Exception),
                                           wait=wait_exponential(multiplier=0.2, max=5)):
            with attempt:
                if stop.is_set():
                    return
                started = await start()
        await work(started)
    finally:
        await close(started)
        await ops.stop()
        log.info("%s stopped", name)
