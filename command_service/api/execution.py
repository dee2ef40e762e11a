"""Turns a command into an HTTP answer: replays a stored response for a known Idempotency-Key,
otherwise runs the command, maps refusals to the contract's errors and adds the headers every
command response carries."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import Response

from command_service.api.deps import CommandServiceDep
from command_service.domain.commands import Command
from command_service.domain.errors import DomainError, NotFoundError, SameAccountError
from command_service.idempotency import (
    IdempotencyKey,
    IdempotencyRaceError,
    StoredResponse,
    find_stored_response,
    request_fingerprint,
)
from command_service.service import CommandResult, Refusal
from shared.config import Settings, get_settings
from shared.consistency import encode_token
from shared.http import ApiError, error_response

_PRINTABLE_KEY = re.compile(r"[\x20-\x7e]{1,128}")


async def idempotency_key(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    key: Annotated[str | None, Header(
        alias="Idempotency-Key",
        description="1-128 printable characters; a retry with the same key and body gets the "
                    "first response again, remembered for at least 24 hours")] = None,
) -> IdempotencyKey | None:
    if key is None:
        return None
    if not _PRINTABLE_KEY.fullmatch(key):
        raise ApiError(422, "validation_error", "the request is malformed", [
            {"field": "Idempotency-Key", "message": "must be 1 to 128 printable characters"}])
    fingerprint = request_fingerprint(request.method, request.url.path, await request.body())
    return IdempotencyKey(key, fingerprint, timedelta(seconds=settings.idempotency_ttl_s))


IdempotencyDep = Annotated[IdempotencyKey | None, Depends(idempotency_key)]


class CommandRunner:
    """Per request: the service, the idempotency key, and how to answer."""

    def __init__(self, service: CommandServiceDep, idempotency: IdempotencyDep) -> None:
        self.service, self.idempotency = service, idempotency

    async def __call__(self, command: Command, status: int) -> Response:
        if self.idempotency is not None:
            replay = await self._replay()
            if replay is not None:
                return replay
        try:
            result = await self.service.execute(command, idempotency=self.idempotency,
                                                 render=lambda x: _render(x, status))
        except IdempotencyRaceError:
            replay = await self._replay()
            if replay is None:  # the winner's row vanished (expired): nothing to replay
                raise ApiError(409, "idempotency_key_reused",
                               "another request with this Idempotency-Key is in flight") from None
            return replay
        except (DomainError, NotFoundError) as refusal:
            return _respond(_render(refusal, status))
        return _respond(result.response)

    async def _replay(self) -> Response | None:
        found = await find_stored_response(self.service.engine, self.idempotency.key)
        if found is None:
            return None
        fingerprint, stored = found
        if fingerprint != self.idempotency.fingerprint:
            raise ApiError(409, "idempotency_key_reused",
                           "this Idempotency-Key was used for a different request")
        return _respond(stored, replayed=True)


Runner = Annotated[CommandRunner, Depends()]


def _render(outcome: CommandResult | Refusal, status: int) -> StoredResponse:
    if isinstance(outcome, CommandResult):
        body = json.dumps(outcome.body, ensure_ascii=False, separators=(",", ":"))
        return StoredResponse(status, body, {
            "X-Consistency-Token": encode_token(outcome.versions),
            "X-Command-ID": outcome.command_id,
        })
    headers = {"X-Command-ID": getattr(outcome, "command_id", "")}
    if isinstance(outcome, NotFoundError):
        response = error_response(404, outcome.code, outcome.message)
    elif isinstance(outcome, SameAccountError):
        response = error_response(422, "validation_error", outcome.message,
                                  [{"field": "to_account_id", "message": outcome.message}])
    else:
        response = error_response(409, outcome.code, outcome.message)
    return StoredResponse(response.status_code, response.body.decode(), headers)


def _respond(stored: StoredResponse, replayed: bool = False) -> Response:
    headers = dict(stored.headers)
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(stored.body, status_code=stored.status, headers=headers,
                    media_type="application/json")
