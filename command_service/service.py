"""Runs a command: one unit of work, retried inside the service when it loses a race (lock
timeout, deadlock, version conflict), so racing clients never see a conflict that the balance
covers. A business refusal, or a command its sender may not send, is recorded as a failed
command and changes nothing else; so is a command that fails on an unexpected error, in a
transaction of its own once the failed one rolled back. Every command record names its subject
(who sent it), the customer it acts for, the aggregates it touched and its input."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from command_service.access import check_command, check_in_transaction
from command_service.command_log import acting_customer, named_ids, payload
from command_service.db.engine import read_only
from command_service.db.errors import (
    ConnectionLostError,
    is_connection_lost,
    is_transient_conflict,
    is_unavailable,
    unique_violation,
)
from command_service.db.repository import SqlAggregates
from command_service.db.tables import commands, customers
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

# What the command log says of a command that failed on a bug; the exception (which may quote
# user data) goes to the service's log only.
INTERNAL_ERROR_MESSAGE = "the command failed on an unexpected error and changed nothing"


@dataclass(frozen=True)
class CommandResult:
    command_id: str
    body: dict  # response body including command_id
    versions: dict[str, int]
    response: StoredResponse | None = None  # what `render` made of it, when given


# Turns a result or a refusal into the exact HTTP response; called inside the transaction so
# that an idempotent command stores the very bytes its first caller receives.
Render = Callable[[CommandResult | Refusal], StoredResponse]
_Attempted = tuple[CommandResult, StoredResponse | None]


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
        record = CommandRecord(command_id, command_type, created_at, subject=subject,
                               payload=payload(command))
        try:
            check_command(principal, command)
            result, response = await self._retried(lambda: self._attempt(
                handler, command, command_id, record, idempotency, render, principal))
        except Refusal as refusal:
            COMMANDS.labels(command_type, "refused").inc()
            await self._record_failure(
                replace(record, idempotency=idempotency,
                        response=render(refusal) if render else None),
                command, refusal.code, refusal.message)
            audit.info("command %s %s by %r: refused (%s)", command_id, command_type, subject,
                       refusal.code)
            raise
        except IdempotencyRaceError:
            COMMANDS.labels(command_type, "replayed").inc()
            raise
        except Exception as exc:
            COMMANDS.labels(command_type, "error").inc()
            # A lost race that outlasted its retries, or a database out of reach, is a 503 to
            # retry, not a failure of the command; anything else is a bug the log must show.
            # Without an idempotency key: a retry of the request runs the command again.
            if not is_unavailable(exc):
                await self._record_failure(record, command, "internal_error",
                                           INTERNAL_ERROR_MESSAGE)
            raise
        COMMANDS.labels(command_type, "completed").inc()
        audit.info("command %s %s by %r: completed", command_id, command_type, subject)
        return replace(result, response=response)

    async def _retried(self, attempt: Callable[[], Awaitable[_Attempted]]) -> _Attempted:
        """Run `attempt` again after a lost race (lock timeout, deadlock, version conflict) or
        a first lost connection, with full-jitter exponential waits (2 ms doubling, at most
        0.25 s), bounded in tries and in time: a request never queues for minutes. What
        tenacity's AsyncRetrying did here, as a plain loop: its bookkeeping cost ~3% of a
        command's CPU although nearly every command succeeds at once.

        A connection lost before COMMIT is retried once: the pool keeps no pre-ping, so a dead
        pooled connection is found this way (db/engine.py). A second loss means the server is
        gone, and the command is answered 503."""
        started = time.monotonic()
        tries = losses = 0
        while True:
            tries += 1
            try:
                return await attempt()
            except Exception as exc:
                losses += isinstance(exc, ConnectionLostError)
                retry = is_transient_conflict(exc) or \
                    (isinstance(exc, ConnectionLostError) and losses == 1)
                if not retry or tries >= self._max_attempts \
                        or time.monotonic() - started >= 10:
                    raise
            await asyncio.sleep(random.uniform(0, min(0.25, 0.002 * 2 ** (tries - 1))))

    async def _attempt(self, handler, command: Command, command_id: str,
                       record: CommandRecord, idempotency: IdempotencyKey | None,
                       render: Render | None, principal: Principal) -> _Attempted:
        """One try of the command, in one unit of work: its result and rendered response."""
        async with SqlUnitOfWork(self._engine, self._topic) as uow:
            try:
                await check_in_transaction(uow, principal, command)
                outcome = await handler(uow, command, record.created_at)
                owners = uow.owners()
                result = CommandResult(command_id, {**outcome.body, "command_id": command_id},
                                       _with_owners(outcome.versions, owners))
                response = render(result) if render else None
                await uow.commit(replace(
                    record, idempotency=idempotency, response=response,
                    customer_id=await acting_customer(uow.aggregates, command, owners),
                    aggregate_ids=uow.changed_ids()))
            except DBAPIError as exc:
                # Before COMMIT the server rolled back what it lost; after it, the outcome
                # is unknown and the error stands (503).
                if is_connection_lost(exc) and not uow.commit_sent:
                    raise ConnectionLostError() from exc
                raise
        return result, response

    async def _record_failure(self, record: CommandRecord, command: Command, code: str,
                              message: str) -> None:
        """Only the command log learns of a failed command: no state, event or outbox row. It
        names the ids the command names, since it changed none."""
        error = json.dumps({"code": code, "message": message})
        try:
            async with self._engine.begin() as conn:
                row = replace(record, customer_id=await acting_customer(SqlAggregates(conn),
                                                                        command),
                              aggregate_ids=tuple(named_ids(command))).row("failed", error)
                await conn.execute(commands.insert().values(**row))
        except Exception as exc:
            if record.idempotency is not None and unique_violation(exc) == "idempotency":
                raise IdempotencyRaceError() from exc
            # The failure is the answer; losing its log entry must not hide it.
            log.exception("could not record failed command %s", record.command_id)

    async def command_status(self, command_id: str) -> dict | None:
        async with read_only(self._engine).connect() as conn:
            row = (await conn.execute(
                sa.select(*LOG_COLUMNS).where(commands.c.command_id == command_id)
            )).mappings().first()
        return None if row is None else dict(row)

    async def customer_commands(self, customer_id: str, *, status: str | None = None,
                                subject: str | None = None,
                                before: tuple[datetime, str] | None = None,
                                limit: int = 50) -> list[dict]:
        """A customer's command log, newest first (ties by command id, descending): up to
        `limit` commands, only of `status` and of `subject` when given, and only those after
        `before` (the (created_at, command_id) of the last one of the previous page)."""
        query = sa.select(*LOG_COLUMNS).where(commands.c.customer_id == customer_id)
        if status is not None:
            query = query.where(commands.c.status == status)
        if subject is not None:
            query = query.where(commands.c.subject == subject)
        if before is not None:
            at, command_id = before
            # The bound on the time alone lets the index start at the cursor.
            query = query.where(commands.c.created_at <= at, sa.or_(
                commands.c.created_at < at, commands.c.command_id < command_id))
        query = query.order_by(commands.c.created_at.desc(), commands.c.command_id.desc()) \
            .limit(limit)
        async with read_only(self._engine).connect() as conn:
            return [dict(row) for row in (await conn.execute(query)).mappings()]

    async def customer_known(self, customer_id: str) -> bool:
        """Whether the customer is registered or any command acted for it (a refused
        registration names a customer that does not exist)."""
        async with read_only(self._engine).connect() as conn:
            return await conn.scalar(sa.select(
                sa.exists().where(customers.c.customer_id == customer_id)
                | sa.exists().where(commands.c.customer_id == customer_id)))


# What the command log shows of a command (never its stored idempotent response).
LOG_COLUMNS = (commands.c.command_id, commands.c.command_type, commands.c.status,
               commands.c.created_at, commands.c.completed_at, commands.c.error,
               commands.c.subject, commands.c.customer_id, commands.c.aggregate_ids,
               commands.c.payload)
