from __future__ import annotations

import json
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends

from command_service.api.deps import CommandServiceDep
from command_service.api.schemas import CommandStatusOut
from shared.auth import Principal, authenticate, forbidden
from shared.envelope import iso_utc
from shared.http import ERROR_RESPONSES, ApiError

router = APIRouter(prefix="/v1/commands", tags=["commands"])


@router.get("/{command_id}", response_model=CommandStatusOut,
            responses={k: ERROR_RESPONSES[k] for k in (404, 422, 503)},
            summary="What became of a command")
async def command_status(command_id: UUID, service: CommandServiceDep,
                         principal: Annotated[Principal, Depends(authenticate)]) -> dict:
    row = await service.command_status(str(command_id))
    if row is None:
        raise ApiError(404, "command_not_found", f"command {command_id} does not exist")
    # A customer's token sees the commands it sent; other tokens see every command.
    if principal.restricted and row["subject"] != principal.subject:
        raise forbidden(f"command {command_id} was sent by someone else")
    body = {
        "command_id": row["command_id"], "type": row["command_type"], "status": row["status"],
        "created_at": iso_utc(row["created_at"]),
        "completed_at": iso_utc(row["completed_at"]) if row["completed_at"] else None,
        # Who sent it; null for a command recorded before subjects were.
        "subject": row["subject"] or None,
    }
    if row["error"]:
        body["error"] = json.loads(row["error"])
    return body
