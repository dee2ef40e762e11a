"""The command service: its app factory. The engine and the command service are created in the
lifespan; what both services share (middleware, errors, health) is shared/service.py's."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from command_service.api.routers import accounts, commands, customers, transfers
from command_service.db.engine import create_engine, ping
from command_service.db.errors import UNAVAILABLE
from command_service.service import CommandService
from shared.auth import AUTH_RESPONSES, RATE_LIMITED_RESPONSE, READ, WRITE, require_scope
from shared.config import Settings
from shared.ratelimit import TokenBucketLimiter
from shared.service import ServiceSpec, build_service


@asynccontextmanager
async def _write_model(app: FastAPI, config: Settings):
    app.state.rate_limiter = TokenBucketLimiter(config.rate_limit_commands_per_s,
                                                config.rate_limit_burst)
    engine = create_engine(config)
    app.state.engine = engine
    app.state.command_service = CommandService(engine, config.kafka_topic)
    try:
        yield
    finally:
        await engine.dispose()


def _probes(app: FastAPI):
    return {"database": lambda: ping(app.state.engine)}


# Commands check their scope (and customer) in the service, where a refusal is recorded.
_COMMANDS = {"responses": {**AUTH_RESPONSES, **RATE_LIMITED_RESPONSE}}

SPEC = ServiceSpec(
    name="command",
    title="cqrs-accounts command service",
    description="Commands on bank customers and accounts. Each success answers with the "
                "new aggregate versions and an X-Consistency-Token for read-your-writes.",
    resources=_write_model,
    probes=_probes,
    unavailable=UNAVAILABLE,  # lock contention past the retries, a lost connection: 503
    # Busiest first: FastAPI tries included routers in order, each route of each (~5% of a
    # deposit's CPU when deposits came third).
    routers=[(accounts.router, _COMMANDS), (transfers.router, _COMMANDS),
             (customers.router, _COMMANDS),
             (commands.router, {"dependencies": [Depends(require_scope(WRITE, READ))],
                                "responses": AUTH_RESPONSES})],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_service(SPEC, settings)
