"""The query service: its app factory. The MongoDB client is created in the lifespan; what both
services share (middleware, errors, health) is shared/service.py's."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError

from query_service.conditional import NOT_MODIFIED_RESPONSE, VIEW_HEADERS
from query_service.deps import rate_limited_reader
from query_service.routers import accounts, customers, history, streams
from shared.auth import AUTH_RESPONSES, RATE_LIMITED_RESPONSE
from shared.config import Settings
from shared.ratelimit import TokenBucketLimiter
from shared.readmodel import ViewDatabase, make_mongo_client
from shared.service import ServiceSpec, build_service


@asynccontextmanager
async def _read_store(app: FastAPI, config: Settings):
    app.state.query_limiter = TokenBucketLimiter(config.rate_limit_queries_per_s,
                                                 config.rate_limit_query_burst)
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


# Every view needs accounts:read and a subject within its rate of queries; a customer's token
# is further held to its own customer by query_service/access.py. Every view answers an ETag,
# and 304 for a matching If-None-Match (query_service/conditional.py).
_VIEWS = {"dependencies": [Depends(rate_limited_reader)],
          "responses": {**VIEW_HEADERS, **NOT_MODIFIED_RESPONSE, **AUTH_RESPONSES,
                        **RATE_LIMITED_RESPONSE}}
# A stream is opened like a view is read (the scope, the rate of queries), but it has no ETag
# and no 304: it is never the same answer twice.
_STREAMS = {"dependencies": [Depends(rate_limited_reader)],
            "responses": {**AUTH_RESPONSES, **RATE_LIMITED_RESPONSE}}

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
             (streams.router, _STREAMS)],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_service(SPEC, settings)
