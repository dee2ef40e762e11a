"""The bare FastAPI ceiling of a deposit: `python -m bench.bare_api --port N [--workers N]`.

One POST route, `/v1/accounts/{id}/deposits`, that parses the same JSON body as the command
service and runs the raw driver's deposit transaction (`bench.raw.RawWriteModel`: lock the
row, update it, insert the event and outbox rows, commit) on a small pool of raw connections.
No domain model, no unit of work, no idempotency, no metrics, no middleware. It reads the
same CQRS_* settings as the command service, and is served the way the command service is
served in a bench run (uvicorn on uvloop, in its own process), so the gap between the two is
what our code costs, and the gap between it and the raw driver is what FastAPI and uvicorn
cost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy.engine import make_url

from bench.raw import RawWriteModel
from shared.config import Settings, load_settings


class DepositIn(BaseModel):
    amount: str
    reference: str | None = None


class RawPool:
    """Up to `size` raw connections, opened when first needed and reused last in, first out.

    The size is the command service's: its engine keeps up to `database_pool_size`
    connections, with no overflow (command_service/db/engine.py). On SQLite the writers
    queue for one in-process lock before they take a connection, as the service's unit of
    work does (`write_lock`), so only one connection is ever opened: each commit by one
    connection would empty the page cache of every other."""

    def __init__(self, database_url: str, timeout_s: float, size: int) -> None:
        self._url, self._timeout_s = database_url, timeout_s
        self._slots = asyncio.Semaphore(size)
        self._idle: list[RawWriteModel] = []
        sqlite = make_url(database_url).get_backend_name() == "sqlite"
        self._writer = asyncio.Lock() if sqlite else contextlib.nullcontext()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[RawWriteModel]:
        async with self._writer, self._slots:
            conn = self._idle.pop() if self._idle else await RawWriteModel.connect(
                self._url, self._timeout_s)
            try:
                yield conn
            except BaseException:
                # It rolled back; a connection that failed may be broken, so it is not kept.
                with contextlib.suppress(Exception):
                    await conn.close()
                raise
            self._idle.append(conn)

    async def close(self) -> None:
        while self._idle:
            with contextlib.suppress(Exception):
                await self._idle.pop().close()


def create_app(settings: Settings) -> FastAPI:
    pool = RawPool(settings.database_url, settings.database_timeout_s,
                   settings.database_pool_size)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        async with pool.connection():  # the database answers before /readyz does
            pass
        yield
        await pool.close()

    app = FastAPI(title="bare deposit", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)

    @app.post("/v1/accounts/{account_id}/deposits", status_code=201)
    async def deposit(account_id: str, body: DepositIn) -> dict:
        async with pool.connection() as conn:
            await conn.deposit(account_id, settings.kafka_topic)
        return {"account_id": account_id, "amount": body.amount}

    @app.get("/readyz")
    async def ready() -> dict:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_api")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes: as many as the command service has")
    args = parser.parse_args()
    # Exactly how bench.service serves the command service: one process, or the workers of
    # `command-api --workers N` (shared/supervisor.py), so the two differ only in the app.
    if args.workers == 1:
        from shared.worker import run, serve_app

        run(serve_app(create_app(load_settings()), "127.0.0.1", args.port))
        return
    from shared.supervisor import serve_workers

    sys.exit(serve_workers("bench.bare_api:create_app", "127.0.0.1", args.port, args.workers))


if __name__ == "__main__":
    main()
