"""The command service: FastAPI app factory. The engine is created in the lifespan."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import Depends, FastAPI
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from command_service.api.routers import accounts, commands, customers, transfers
from command_service.db.engine import create_engine, read_only
from command_service.service import CommandService
from command_service.unit_of_work import ConcurrentUpdateError
from shared.auth import (
    AUTH_RESPONSES,
    RATE_LIMITED_RESPONSE,
    READ,
    WRITE,
    Authenticator,
    BearerAuthMiddleware,
    describe,
    metrics_guard,
    require_scope,
)
from shared.config import Settings, get_settings
from shared.http import BodySizeLimit, add_error_schema, health_router, install_error_handlers
from shared.observability import RequestContext
from shared.ratelimit import TokenBucketLimiter
from shared.tracing import configure_tracing

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        config = settings or get_settings()
        app.state.settings = config
        configure_tracing("cqrs-accounts-command")
        app.state.authenticator = Authenticator.from_settings(config)  # no key: refuse to start
        app.state.rate_limiter = TokenBucketLimiter(config.rate_limit_commands_per_s,
                                                    config.rate_limit_burst)
        app.state.metrics_admin_only = config.auth_metrics_admin_only
        log.info("command service: %s", describe(config))
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
    app.add_middleware(BodySizeLimit)
    app.add_middleware(BearerAuthMiddleware)  # no token, nothing else happens
    app.add_middleware(RequestContext, service="command")  # outermost: ids and latency
    # Lock contention that outlasted the retries, and an exhausted connection pool, are
    # "try again shortly" (503 + Retry-After), not a bug.
    install_error_handlers(app, unavailable=(OperationalError, InterfaceError, PoolTimeout,
                                             ConcurrentUpdateError))
    add_error_schema(app)

    async def database_answers() -> None:
        async with read_only(app.state.engine).connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    app.include_router(health_router({"database": database_answers},
                                     metrics_guard=metrics_guard))
    # Commands check their scope (and customer) in the service, where a refusal is recorded.
    for router in (customers.router, accounts.router, transfers.router):
        app.include_router(router, responses={**AUTH_RESPONSES, **RATE_LIMITED_RESPONSE})
    app.include_router(commands.router, dependencies=[Depends(require_scope(WRITE, READ))],
                       responses=AUTH_RESPONSES)
    return app
