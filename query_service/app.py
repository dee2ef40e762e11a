"""The query service: its app factory. The MongoDB client is created in the lifespan; what both
services share (middleware, errors, health) is shared/service.py's."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError

from query_service.routers import accounts, customers, history, streams
from shared.auth import AUTH_RESPONSES, require_reader
from shared.config import Settings
from shared.readmodel import ViewDatabase, make_mongo_client
from shared.service import ServiceSpec, build_service


@asynccontextmanager
async def _read_store(app: FastAPI, config: Settings):
    client = make_mongo_client(config)
    app.state.db = ViewDatabase(client[config.mongo_database])
    try:
        async with streams.live_updates(app, config):
            yield
    finally:
        await client.close()


def _probes(app: FastAPI):
    async def read_store_answers() -> None:
        await app.state.db.command("ping")

    return {"read_store": read_store_answers}


# Every view needs accounts:read; a customer's token is further held to its own customer by
# query_service/access.py.
_VIEWS = {"dependencies": [Depends(require_reader)], "responses": AUTH_RESPONSES}

SPEC = ServiceSpec(
    name="query",
    title="cqrs-accounts query service",
    description="Eventually consistent views of customers, accounts and transactions. "
                "Send X-Consistency-Token from a command response to read your writes.",
    resources=_read_store,
    probes=_probes,
    unavailable=(ConnectionFailure, ServerSelectionTimeoutError),
    # The event streams (routers/streams.py, text/event-stream) must reach the client
    # unbuffered: gzip, ETag or caching middleware must pass that media type through untouched
    # (Starlette's GZipMiddleware skips it by default) and must not read the body to its end.
    routers=[(customers.router, _VIEWS), (accounts.router, _VIEWS), (history.router, _VIEWS),
             (streams.router, _VIEWS)],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_service(SPEC, settings)
