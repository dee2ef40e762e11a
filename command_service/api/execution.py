"""Turns a command into an HTTP answer: runs it, maps refusals to the contract's errors and
adds the headers every command response carries."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from command_service.domain.commands import Command
from command_service.domain.errors import DomainError, NotFoundError, SameAccountError
from command_service.service import CommandService
from shared.consistency import encode_token
from shared.http import ApiError


async def run_command(service: CommandService, command: Command, status: int) -> JSONResponse:
    try:
        result = await service.execute(command)
    except NotFoundError as missing:
        raise ApiError(404, missing.code, missing.message,
                       headers=_command_header(missing)) from None
    except SameAccountError as refusal:
        raise ApiError(422, "validation_error", refusal.message,
                       [{"field": "to_account_id", "message": refusal.message}],
                       headers=_command_header(refusal)) from None
    except DomainError as refusal:
        raise ApiError(409, refusal.code, refusal.message,
                       headers=_command_header(refusal)) from None
    return JSONResponse(
        status_code=status,
        content=result.body,
        headers={"X-Consistency-Token": encode_token(result.versions),
                 "X-Command-ID": result.command_id},
    )


def _command_header(refusal: Exception) -> dict[str, str]:
    command_id = getattr(refusal, "command_id", None)
    return {"X-Command-ID": command_id} if command_id else {}
