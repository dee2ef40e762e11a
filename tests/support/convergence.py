"""Waiting for the read side to converge: views are eventually consistent, so a test that
checks them against the write model waits until `verify` finds nothing, or its time is up."""

from __future__ import annotations

import asyncio
import time

from operations.drift import Drift
from operations.verify import find_drift
from shared.readmodel import ViewDatabase


async def drift_once_converged(engine, read_db, timeout_s: float,
                               poll_s: float = 0.5) -> list[Drift]:
    """What `verify` still finds after the views had `timeout_s` to catch up (empty once they
    match the write model)."""
    deadline = time.monotonic() + timeout_s
    while (drift := await find_drift(engine, ViewDatabase(read_db))) \
            and time.monotonic() < deadline:
        await asyncio.sleep(poll_s)
    return drift
