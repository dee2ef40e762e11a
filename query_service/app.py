"""The query service: FastAPI app factory. The MongoDB client is created in the lifespan."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError

from query_service.routers import accounts, customers
from shared.config import Settings, get_settings
from shared.http import BodySizeLimit, add_error_schema, health_router, install_error_handlers
from shared.readmodel import make_mongo_client


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        config = settings or get_settings()
        client = make_mongo_client(config)
        app.state.db = client[config.mongo_database]
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
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings
    app.add_middleware(BodySizeLimit)
    install_error_handlers(app, unavailable=(ConnectionFailure, ServerSelectionTimeoutError))
    add_error_schema(app)

    async def read_store_answers() -> None:
        await app.state.db.command("ping")

    app.include_router(health_router({"read_store": read_store_answers}))
    app.include_router(customers.router)
    app.include_router(accounts.router)
    return app
