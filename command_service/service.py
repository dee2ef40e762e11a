"""Runs a command: one unit of work, retried inside the service when it loses a race (lock
timeout, deadlock, version conflict), so racing clients never see a conflict that the balance
covers. A business refusal is recorded as a failed command and changes nothing else."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from command_service.db.tables import commands
from command_service.domain.commands import Command
from command_service.domain.errors import DomainError, NotFoundError
from command_service.handlers import HANDLERS
from command_service.metrics import COMMANDS
from command_service.unit_of_work import CommandRecord, ConcurrentUpdateError, SqlUnitOfWork
from shared.envelope import EventEnvelope

log = logging.getLogger(__name__)

# MySQL/MariaDB: 1213 deadlock, 1205 lock wait timeout. SQLite: the write lock was busy.
_MYSQL_RETRYABLE = {1205, 1213}


def is_transient_conflict(exc: BaseException) -> bool:
    if isinstance(exc, ConcurrentUpdateError):
        return True
    if isinstance(exc, OperationalError):
        args = getattr(exc.orig, "args", ())
        if args and args[0] in _MYSQL_RETRYABLE:
            return True
        return "database is locked" in str(exc.orig)
    return False


@dataclass(frozen=True)
class CommandResult:
    command_id: str
    body: dict  # response body including command_id
    versions: dict[str, int]
    events: list[EventEnvelope]


class CommandService:
    def __init__(self, engine: AsyncEngine, topic: str, max_attempts: int = 30) -> None:
        self._engine = engine
        self._topic = topic
        self._max_attempts = max_attempts

    async def execute(self, command: Command) -> CommandResult:
        command_type, handler = HANDLERS[type(command)]
        command_id = str(uuid.uuid4())
        created_at = datetime.now(UTC)
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(is_transient_conflict),
                stop=stop_after_attempt(self._max_attempts),
                wait=wait_random_exponential(multiplier=0.002, max=0.25),
                reraise=True,
            ):
                with attempt:
                    async with SqlUnitOfWork(self._engine, self._topic) as uow:
                        outcome = await handler(uow, command, created_at)
                        stored = await uow.commit(
                            CommandRecord(command_id, command_type, created_at)
                        )
        except (DomainError, NotFoundError) as refusal:
            COMMANDS.labels(command_type, "refused").inc()
            await self._record_failure(command_id, command_type, created_at, refusal)
            refusal.command_id = command_id
            raise
        except Exception:
            COMMANDS.labels(command_type, "error").inc()
            raise
        COMMANDS.labels(command_type, "completed").inc()
        return CommandResult(command_id, {**outcome.body, "command_id": command_id},
                             outcome.versions, stored)

    async def _record_failure(self, command_id: str, command_type: str, created_at: datetime,
                              refusal: DomainError | NotFoundError) -> None:
        """Only the command log learns of a refusal: no state, event or outbox row."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(commands.insert().values(
                    command_id=command_id, command_type=command_type, status="failed",
                    created_at=created_at.replace(tzinfo=None),
                    completed_at=datetime.now(UTC).replace(tzinfo=None),
                    error=json.dumps({"code": refusal.code, "message": refusal.message}),
                ))
        except Exception:  # the refusal is the answer; losing its log entry must not hide it
            log.exception("could not record failed command %s", command_id)

    async def command_status(self, command_id: str) -> dict | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                sa.select(commands).where(commands.c.command_id == command_id)
            )).mappings().first()
        if row is None:
            return None
        return dict(row)
