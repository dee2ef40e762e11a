"""The command service: FastAPI app factory. The engine is created in the lifespan."""

from __future__ import annotations

from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.exc import InterfaceError, OperationalError

from command_service.api.routers import accounts, commands, customers, transfers
from command_service.db.engine import create_engine
from command_service.service import CommandService
from shared.config import Settings, get_settings
from shared.http import BodySizeLimit, add_error_schema, health_router, install_error_handlers


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        config = settings or get_settings()
        engine = create_engine(config)
        app.state.engine = engine
        app.state.command_service = CommandService(engine, config.kafka_topic)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="cqrs-accounts command service",
        version="0.1.0",
        description="Commands on bank customers and accounts. Each success answers with the "
                    "new aggregate versions and an X-Consistency-Token for read-your-writes.",
        lifespan=lifespan,
    )
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings
    app.add_middleware(BodySizeLimit)
    install_error_handlers(app, unavailable=(OperationalError, InterfaceError))
    add_error_schema(app)

    async def database_answers() -> None:
        async with app.state.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    app.include_router(health_router({"database": database_answers}))
    for router in (customers.router, accounts.router, transfers.router, commands.router):
        app.include_router(router)
    return app
