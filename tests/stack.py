"""The four processes of the system, run inside the test's event loop against real servers:
both APIs served by uvicorn on free ports (real HTTP), the relay and the projector as tasks
that a test can stop and start again to simulate outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

from command_service.api.app import create_app as create_command_app
from command_service.outbox.worker import serve_relay
from projector.worker import serve_projector
from query_service.app import create_app as create_query_app
from shared.auth import ADMIN, mint_token
from shared.config import Settings
from shared.worker import InLoopServer

# Authentication stays on in the tests: the Stack's HTTP clients carry an admin token signed
# with this secret (tests/integration/test_auth*.py mint their own tokens with it).
TEST_JWT_SECRET = "test-secret-for-the-suite-only-0123456789abcdef"


# The in-loop servers share the test's event loop with their clients. When a busy machine stalls
# that loop for seconds, uvicorn's keep-alive timer can fire before a request that a client
# already sent on a pooled connection is read, and the request fails with a ReadError (seen on
# CI after stalls of 3 s and more). Servers keep an idle connection a minute and clients let
# theirs go after 2 s: 58 s of margin instead of none.
SERVER_KEEP_ALIVE_S = 60
CLIENT_LIMITS = httpx.Limits(keepalive_expiry=2.0)


def in_loop_server(app) -> InLoopServer:
    """An API served in the test's loop, with its lifespan, for `http_client`s."""
    return InLoopServer(app, lifespan="on", keep_alive_s=SERVER_KEEP_ALIVE_S)


def http_client(port: int, **options) -> httpx.AsyncClient:
    """A client of an `in_loop_server` on `port`."""
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=CLIENT_LIMITS,
                             **options)


class Worker:
    def __init__(self, name: str, serve: Callable[..., Awaitable[None]], settings: Settings):
        self.name, self._serve, self._settings = name, serve, settings
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._serve(self._settings, "127.0.0.1", 0, self._stop))

    async def stop(self) -> None:
        if self._task is None:
            return
        self._stop.set()
        await asyncio.wait_for(self._task, 30)
        self._task = None

    def kill(self) -> None:
        """Abandon the worker mid-flight, as a crash would (no graceful stop)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None


def admin_headers(settings: Settings) -> dict[str, str]:
    """An admin's bearer token for the settings' key (none needed with authentication off)."""
    if settings.auth_disabled:
        return {}
    token = mint_token(settings, subject="test-admin", scopes=[ADMIN])
    return {"Authorization": f"Bearer {token}"}


class Stack:
    def __init__(self, settings: Settings, query_settings: Settings | None = None) -> None:
        """`query_settings`: the query service's own, when a test sets them apart (a read
        store reached through a proxy, say)."""
        self.settings = settings
        self._apis = [in_loop_server(create_command_app(settings)),
                      in_loop_server(create_query_app(query_settings or settings))]
        self.relay = Worker("relay", serve_relay, settings)
        self.projector = Worker("projector", serve_projector, settings)

    async def __aenter__(self) -> Stack:
        command_port = await self._apis[0].start()
        query_port = await self._apis[1].start()
        # Both clients act as an admin; a test about access control sends its own tokens.
        headers = admin_headers(self.settings)
        self.commands = http_client(command_port, timeout=30, headers=headers)
        self.queries = http_client(query_port, timeout=30, headers=headers)
        self.relay.start()
        self.projector.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.relay.stop()
        await self.projector.stop()
        await self.commands.aclose()
        await self.queries.aclose()
        for api in self._apis:
            await api.stop()

    async def eventually(self, path: str, check: Callable[[httpx.Response], bool],
                         timeout_s: float = 20.0) -> httpx.Response:
        """GET `path` on the query service until `check` holds (views converge eventually)."""
        deadline = time.monotonic() + timeout_s
        while True:
            response = await self.queries.get(path)
            if check(response):
                return response
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} did not converge: {response.status_code} "
                                     f"{response.text[:500]}")
            await asyncio.sleep(0.005)
