"""The command log over HTTP: what became of one command, and a customer's commands, newest
first. Both follow one confinement: a customer's token sees only what it sent itself."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from command_service.api.deps import CommandServiceDep
from command_service.api.schemas import CommandLogPage, CommandStatusOut
from command_service.db.tables import naive_utc
from shared.auth import Principal, authenticate, forbidden
from shared.cursors import newest_first_cursor, newest_first_position
from shared.envelope import iso_utc
from shared.http import ERROR_RESPONSES, ApiError

router = APIRouter(tags=["commands"])
Reader = Annotated[Principal, Depends(authenticate)]


@router.get("/v1/commands/{command_id}", response_model=CommandStatusOut,
            responses={k: ERROR_RESPONSES[k] for k in (404, 422, 503)},
            summary="What became of a command")
async def command_status(command_id: UUID, service: CommandServiceDep,
                         principal: Reader) -> dict:
    row = await service.command_status(str(command_id))
    if row is None:
        raise ApiError(404, "command_not_found", f"command {command_id} does not exist")
    # A customer's token sees the commands it sent; other tokens see every command.
    if principal.restricted and row["subject"] != principal.subject:
        raise forbidden(f"command {command_id} was sent by someone else")
    return command_view(row)


@router.get("/v1/customers/{customer_id}/commands", response_model=CommandLogPage,
            responses={k: ERROR_RESPONSES[k] for k in (404, 422, 503)},
            summary="A customer's command log, newest first, refused commands included")
async def customer_commands(
    customer_id: UUID,
    service: CommandServiceDep,
    principal: Reader,
    status: Annotated[Literal["completed", "failed"] | None,
                      Query(description="only commands of this status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict:
    key = str(customer_id)
    if not principal.may_see_customer(key):
        raise forbidden(f"customer {key} is not the customer this token acts for")
    before = _position(cursor) if cursor is not None else None
    # As for one command: a customer's token lists only what it sent (not, say, the bank's
    # freeze of its account), so every item it is shown it may also fetch by id.
    rows = await service.customer_commands(
        key, status=status, subject=principal.subject if principal.restricted else None,
        before=before, limit=limit + 1)
    if not rows and before is None and not await service.customer_known(key):
        raise ApiError(404, "customer_not_found", f"customer {key} does not exist")
    return {"items": [command_view(row) for row in rows[:limit]],
            "next_cursor": newest_first_cursor(rows, limit, "created_at", "command_id")}


def _position(cursor: str) -> tuple[datetime, str]:
    """The (created_at, command_id) of the last command a cursor's page served."""
    at, command_id = newest_first_position(cursor)
    return naive_utc(at), command_id


def command_view(row: dict) -> dict:
    """A command log row as the API shows it. A command recorded before migration 0005 has
    no customer, aggregates or payload: null, [] and {}."""
    body = {
        "command_id": row["command_id"], "type": row["command_type"], "status": row["status"],
        "created_at": iso_utc(row["created_at"]),
        "completed_at": iso_utc(row["completed_at"]) if row["completed_at"] else None,
        # Who sent it; null for a command recorded before subjects were.
        "subject": row["subject"] or None,
        "customer_id": row["customer_id"],
        "aggregate_ids": json.loads(row["aggregate_ids"] or "[]"),
        "payload": json.loads(row["payload"] or "{}"),
    }
    if row["error"]:
        body["error"] = json.loads(row["error"])
    return body
