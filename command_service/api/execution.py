"""Turns a command into an HTTP answer: checks the sender's rate, replays a stored response for
a known Idempotency-Key (of the same subject), otherwise runs the command for its sender, maps
refusals to the contract's errors and adds the headers every command response carries."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import Response

from command_service.access import Forbidden
from command_service.domain.commands import Command
from command_service.domain.errors import NotFoundError, Refusal, SameAccountError
from command_service.idempotency import (
    IdempotencyKey,
    IdempotencyRaceError,
    StoredResponse,
    find_stored_response,
    request_fingerprint,
)
from command_service.service import CommandResult, CommandService
from shared.auth import REALM, Principal
from shared.auth.dependencies import BearerPrincipal
from shared.consistency import encode_token
from shared.http import ApiError, error_response
from shared.ratelimit import ensure_within_rate

# 1-128 printable ASCII characters. No space at either end: HTTP strips it from a header value,
# so such a key could never arrive as it was sent.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?$"
_PRINTABLE_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


async def _idempotency_key(request: Request, key: str | None) -> IdempotencyKey | None:
    if key is None:
        return None
    if not _PRINTABLE_KEY.fullmatch(key):
        raise ApiError(422, "validation_error", "the request is malformed", [
            {"field": "Idempotency-Key", "message": "must be 1 to 128 printable characters"}])
    fingerprint = request_fingerprint(request.method, request.url.path, await request.body())
    ttl = timedelta(seconds=request.app.state.settings.idempotency_ttl_s)
    return IdempotencyKey(key, fingerprint, ttl)


class CommandRunner:
    """Per request: the service, the sender, the idempotency key, and how to answer."""

    def __init__(self, service: CommandService, sender: Principal,
                 idempotency: IdempotencyKey | None) -> None:
        self.service, self.sender, self.idempotency = service, sender, idempotency

    def own_customer_id(self) -> str | None:
        """The customer a customer's token acts for (None for other tokens)."""
        return self.sender.customer_id if self.sender.restricted else None

    async def __call__(self, command: Command, status: int) -> Response:
        if self.idempotency is not None:
            replay = await self._replay()
            if replay is not None:
                return replay
        try:
            result = await self.service.execute(command, idempotency=self.idempotency,
                                                 render=lambda x: _render(x, status),
                                                 principal=self.sender)
        except IdempotencyRaceError:
            replay = await self._replay()
            if replay is None:  # the winner's row vanished (expired): nothing to replay
                raise ApiError(409, "idempotency_key_reused",
                               "another request with this Idempotency-Key is in flight") from None
            return replay
        except Refusal as refusal:
            return _respond(_render(refusal, status))
        return _respond(result.response)

    async def _replay(self) -> Response | None:
        if self.idempotency is None:
            return None
        found = await find_stored_response(self.service.engine, self.idempotency.key,
                                           self.sender.subject)
        if found is None:
            return None
        fingerprint, stored = found
        if fingerprint != self.idempotency.fingerprint:
            raise ApiError(409, "idempotency_key_reused",
                           "this Idempotency-Key was used for a different request")
        return _respond(stored, replayed=True)


class CommandSender(BearerPrincipal):
    """A dependency: the request's CommandRunner. Its sender is authenticated (as
    `authenticate`: it is the same bearer scheme, so the OpenAPI document names the scheme
    on each command as before) and within its rate (a token bucket per subject), then its
    Idempotency-Key is checked, in that order. One dependency that reads the service, the
    limiter and the settings from the app itself: FastAPI's dependency solving cost ~10% of
    a deposit's CPU, most of it per level of nesting (one level per dependency)."""

    async def __call__(  # type: ignore[override]
        self,
        request: Request,
        key: Annotated[str | None, Header(
            alias="Idempotency-Key",
            description="1-128 printable characters; a retry with the same key and body gets "
                        "the first response again, remembered for at least 24 hours. A key "
                        "belongs to the token's subject: other callers' keys never collide "
                        "with it",
            json_schema_extra={"pattern": IDEMPOTENCY_KEY_PATTERN})] = None,
    ) -> CommandRunner:
        sender = await super().__call__(request)
        ensure_within_rate(request.app.state.rate_limiter, sender, "commands")
        idempotency = await _idempotency_key(request, key)
        return CommandRunner(request.app.state.command_service, sender, idempotency)


command_runner = CommandSender()
Runner = Annotated[CommandRunner, Depends(command_runner)]


def _render(outcome: CommandResult | Refusal, status: int) -> StoredResponse:
    if isinstance(outcome, CommandResult):
        body = json.dumps(outcome.body, ensure_ascii=False, separators=(",", ":"))
        return StoredResponse(status, body, {
            "X-Consistency-Token": encode_token(outcome.versions),
            "X-Command-ID": outcome.command_id,
        })
    headers = {"X-Command-ID": outcome.command_id}
    if isinstance(outcome, Forbidden):
        response = error_response(403, outcome.code, outcome.message)
        if outcome.scope:
            headers["WWW-Authenticate"] = \
                f'{REALM}, error="insufficient_scope", scope="{outcome.scope}"'
    elif isinstance(outcome, NotFoundError):
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
