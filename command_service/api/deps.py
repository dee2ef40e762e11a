"""FastAPI dependencies of the command service: everything a route needs, from the lifespan."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from command_service.service import CommandService


# Async on purpose: FastAPI runs a plain `def` dependency in a worker thread, a thread handoff
# per request for a lookup.
async def get_command_service(request: Request) -> CommandService:
    return request.app.state.command_service


CommandServiceDep = Annotated[CommandService, Depends(get_command_service)]
