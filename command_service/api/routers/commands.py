from __future__ import annotations

import json
from uuid import UUID

from fastapi import APIRouter

from command_service.api.deps import CommandServiceDep
from command_service.api.schemas import CommandStatusOut
from shared.envelope import iso_utc
from shared.http import ERROR_RESPONSES, ApiError

router = APIRouter(prefix="/v1/commands", tags=["commands"])


@router.get("/{command_id}", response_model=CommandStatusOut,
            responses={k: ERROR_RESPONSES[k] for k in (404, 422, 503)},
            summary="What became of a command")
async def command_status(command_id: UUID, service: CommandServiceDep) -> dict:
    row = await service.command_status(str(command_id))
    if row is None:
        raise ApiError(404, "command_not_found", f"command {command_id} does not exist")
    body = {
        "command_id": row["command_id"], "type": row["command_type"], "status": row["status"],
        "created_at": iso_utc(row["created_at"]),
        "completed_at": iso_utc(row["completed_at"]) if row["completed_at"] else None,
    }
    if row["error"]:
        body["error"] = json.loads(row["error"])
    return body
