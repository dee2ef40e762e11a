"""A command service whose pool reaches MySQL/MariaDB through a counting proxy
(bench/mysql_trips.py): its round trips and its connections, counted on the wire."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy.engine import make_url

from bench.mysql_trips import RoundTripCounter
from command_service.db.engine import create_engine
from command_service.service import CommandService
from shared.config import Settings


@asynccontextmanager
async def counted_service(database_url: str, pool_size: int,
                          ) -> AsyncIterator[tuple[RoundTripCounter, CommandService]]:
    if not database_url.startswith("mysql"):
        pytest.skip("SQLite runs inside the process: no round trips or connections to count")
    url = make_url(database_url)
    async with RoundTripCounter(url.host, url.port or 3306) as counter:
        proxied = url.set(host=counter.host, port=counter.port)
        engine = create_engine(Settings(database_url=proxied.render_as_string(
            hide_password=False), database_pool_size=pool_size))
        try:
            yield counter, CommandService(engine, "events")
        finally:
            await engine.dispose()
