"""A read store that is busy, not down, slows queries but does not fail them.

pymongo's monitor sends its heartbeat `hello` with connectTimeoutMS as the socket timeout, and a
heartbeat that times out interrupts every operation in flight (the CMAP spec's
interruptInUseConnections). With the connect timeout equal to the short server-selection timeout,
a store busy for a few seconds (300 concurrent reads on a loaded CI machine) answered queries
503: the selection timeout says how long to wait for a store that is *down*, the connect timeout
how long a busy one may take to answer."""

from __future__ import annotations

import asyncio
import os
import signal

from query_service.app import create_app as create_query_app
from tests.stack import admin_headers, http_client, in_loop_server
from tests.support.backends import new_read_store

SELECTION_TIMEOUT_MS = 1000
HEARTBEAT_MS = 500  # pymongo's minimum: a heartbeat falls inside the pause below
PAUSE_S = 2.5  # longer than the selection timeout, well within the connect timeout


async def test_a_read_store_that_stalls_longer_than_the_selection_timeout_answers_late_not_503(
        settings, tmp_path):
    store = new_read_store(tmp_path / "busy")
    store.start()
    local = settings.model_copy(update={
        "mongo_url": f"{store.mongo_url}&heartbeatFrequencyMS={HEARTBEAT_MS}",
        "mongo_timeout_ms": SELECTION_TIMEOUT_MS})
    server = in_loop_server(create_query_app(local))
    port = await server.start()
    try:
        async with http_client(port, timeout=30, headers=admin_headers(settings)) as http:
            assert (await http.get("/v1/customers")).status_code == 200  # connected, warm
            os.kill(store.pid, signal.SIGSTOP)  # the store stops answering, as a busy one does
            try:
                late = asyncio.create_task(http.get("/v1/customers"))
                await asyncio.sleep(PAUSE_S)
                assert not late.done(), "the query did not wait for the store"
            finally:
                os.kill(store.pid, signal.SIGCONT)
            answer = await late
            assert answer.status_code == 200, answer.text
    finally:
        await server.stop()
        store.stop()
