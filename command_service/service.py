"""Runs a command: one unit of work, retried inside the service when it loses a race (lock
timeout, deadlock, version conflict), so racing clients never see a conflict that the balance
covers. A business refusal, or a command its sender may not send, is recorded as a failed
command and changes nothing else. Every command record names its subject (who sent it)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from command_service.access import check_command, check_in_transaction
from command_service.db.engine import read_only
from command_service.db.errors import is_transient_conflict, unique_violation
from command_service.db.tables import commands
from command_service.domain.commands import Command
from command_service.domain.errors import Refusal, deciding
from command_service.handlers import HANDLERS
from command_service.idempotency import IdempotencyKey, IdempotencyRaceError, StoredResponse
from command_service.metrics import COMMANDS
from command_service.unit_of_work import CommandRecord, SqlUnitOfWork
from shared.auth.principal import SYSTEM, Principal
from shared.observability import LOG_CONTEXT, bind
from shared.tracing import span

log = logging.getLogger(__name__)
audit = logging.getLogger("cqrs.audit")


@dataclass(frozen=True)
class CommandResult:
    command_id: str
    body: dict  # response body including command_id
    versions: dict[str, int]
    response: StoredResponse | None = None  # what `render` made of it, when given


# Turns a result or a refusal into the exact HTTP response; called inside the transaction so
# that an idempotent command stores the very bytes its first caller receives.
Render = Callable[[CommandResult | Refusal], StoredResponse]


def _with_owners(versions: dict[str, int], owners: dict[str, str]) -> dict[str, int]:
    """Also name each account's version under "<customer id>/<account id>", so a customer's
    views can wait for an account they do not list yet (one just opened)."""
    return {**versions, **{f"{owners[a]}/{a}": v for a, v in versions.items() if a in owners}}


class CommandService:
    def __init__(self, engine: AsyncEngine, topic: str, max_attempts: int = 30) -> None:
        self._engine = engine
        self._topic = topic
        self._max_attempts = max_attempts

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def execute(self, command: Command, *, idempotency: IdempotencyKey | None = None,
                      render: Render | None = None,
                      principal: Principal = SYSTEM) -> CommandResult:
        """Run `command` for `principal` in one transaction, retried on lock conflicts. Raises
        the refusal (a Refusal, naming the command) after recording it; raises
        IdempotencyRaceError when another request of the same subject with the same key
        committed first. Its log lines and its trace span carry the command id."""
        command_id = str(uuid.uuid4())
        token = bind(command_id=command_id, causation_id=command_id)
        try:
            with (span(f"command {HANDLERS[type(command)][0]}", command_id=command_id),
                  deciding(command_id)):
                return await self._execute(command, command_id, idempotency, render, principal)
        finally:
            LOG_CONTEXT.reset(token)

    async def _execute(self, command: Command, command_id: str,
                       idempotency: IdempotencyKey | None, render: Render | None,
                       principal: Principal) -> CommandResult:
        command_type, handler = HANDLERS[type(command)]
        created_at = datetime.now(UTC)
        subject = principal.subject
        try:
            check_command(principal, command)
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(is_transient_conflict),
                # Bounded in tries and in time: a request never queues for minutes.
                stop=stop_after_attempt(self._max_attempts) | stop_after_delay(10),
                wait=wait_random_exponential(multiplier=0.002, max=0.25),
                reraise=True,
            ):
                with attempt:
                    async with SqlUnitOfWork(self._engine, self._topic) as uow:
                        await check_in_transaction(uow, principal, command)
                        outcome = await handler(uow, command, created_at)
                        result = CommandResult(command_id,
                                               {**outcome.body, "command_id": command_id},
                                               _with_owners(outcome.versions, uow.owners()))
                        response = render(result) if render else None
                        await uow.commit(CommandRecord(
                            command_id, command_type, created_at, idempotency, response,
                            subject))
        except Refusal as refusal:
            COMMANDS.labels(command_type, "refused").inc()
            record = CommandRecord(command_id, command_type, created_at, idempotency,
                                   render(refusal) if render else None, subject)
            await self._record_failure(record, refusal)
            audit.info("command %s %s by %r: refused (%s)", command_id, command_type, subject,
                       refusal.code)
            raise
        except IdempotencyRaceError:
            COMMANDS.labels(command_type, "replayed").inc()
            raise
        except Exception:
            COMMANDS.labels(command_type, "error").inc()
            raise
        COMMANDS.labels(command_type, "completed").inc()
        audit.info("command %s %s by %r: completed", command_id, command_type, subject)
        return replace(result, response=response)

    async def _record_failure(self, record: CommandRecord, refusal: Refusal) -> None:
        """Only the command log learns of a refusal: no state, event or outbox row."""
        error = json.dumps({"code": refusal.code, "message": refusal.message})
        try:
            async with self._engine.begin() as conn:
                await conn.execute(commands.insert().values(**record.row("failed", error)))
        except Exception as exc:
            if record.idempotency is not None and unique_violation(exc) == "idempotency":
                raise IdempotencyRaceError() from exc
            # The refusal is the answer; losing its log entry must not hide it.
            log.exception("could not record failed command %s", record.command_id)

    async def command_status(self, command_id: str) -> dict | None:
        async with read_only(self._engine).connect() as conn:
            row = (await conn.execute(
                sa.select(commands).where(commands.c.command_id == command_id)
            )).mappings().first()
        if row is None:
            return None
        return dict(row)
