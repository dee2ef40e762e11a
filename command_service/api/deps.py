"""FastAPI dependencies of the command service: everything a route needs, from the lifespan."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from command_service.service import CommandService
from shared.ratelimit import TokenBucketLimiter


# Async on purpose: FastAPI runs a plain `def` dependency in a worker thread, a thread handoff
# per request for a lookup.
async def get_command_service(request: Request) -> CommandService:
    return request.app.state.command_service


async def get_rate_limiter(request: Request) -> TokenBucketLimiter:
    return request.app.state.rate_limiter


CommandServiceDep = Annotated[CommandService, Depends(get_command_service)]
RateLimiterDep = Annotated[TokenBucketLimiter, Depends(get_rate_limiter)]
