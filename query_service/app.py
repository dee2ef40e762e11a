"""The query service: FastAPI app factory. The MongoDB client is created in the lifespan."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError

from query_service.routers import accounts, customers
from shared.auth import (
    AUTH_RESPONSES,
    Authenticator,
    BearerAuthMiddleware,
    describe,
    metrics_guard,
    require_reader,
)
from shared.config import Settings, get_settings
from shared.http import BodySizeLimit, add_error_schema, health_router, install_error_handlers
from shared.observability import RequestContext
from shared.readmodel import ViewDatabase, make_mongo_client
from shared.tracing import configure_tracing

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        config = settings or get_settings()
        app.state.settings = config
        configure_tracing("cqrs-accounts-query")
        app.state.authenticator = Authenticator.from_settings(config)  # no key: refuse to start
        app.state.metrics_admin_only = config.auth_metrics_admin_only
        log.info("query service: %s", describe(config))
        client = make_mongo_client(config)
        app.state.db = ViewDatabase(client[config.mongo_database])
        try:
            yield
        finally:
            await client.close()

    app = FastAPI(
        title="cqrs-accounts query service",
        version="0.1.0",
        description="Eventually consistent views of customers, accounts and transactions. "
                    "Send X-Consistency-Token from a command response to read your writes.",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit)
    app.add_middleware(BearerAuthMiddleware)  # no token, nothing else happens
    app.add_middleware(RequestContext, service="query")  # outermost: ids and latency
    install_error_handlers(app, unavailable=(ConnectionFailure, ServerSelectionTimeoutError))
    add_error_schema(app)

    async def read_store_answers() -> None:
        await app.state.db.command("ping")

    app.include_router(health_router({"read_store": read_store_answers},
                                     metrics_guard=metrics_guard))
    # Every view needs accounts:read; a customer's token is further held to its own customer
    # in the routers.
    for router in (customers.router, accounts.router):
        app.include_router(router, dependencies=[Depends(require_reader)],
                           responses=AUTH_RESPONSES)
    return app
