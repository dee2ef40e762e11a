"""A pause that a stop request cuts short: apart from shared/worker.py (uvicorn, FastAPI), so
that code an operator command also runs (the outbox backlog `cqrs-accounts status` reads) can
use it without importing the HTTP server."""

from __future__ import annotations

import asyncio
import contextlib


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
