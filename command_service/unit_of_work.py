"""One database transaction per command: load and lock aggregates, then write their new state,
the command record, the events and the outbox rows together, or nothing at all.

This is where guarantee 1 (no lost event) starts: an event exists in the outbox exactly when
the state change it describes was committed.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from command_service.db.engine import write_lock
from command_service.db.tables import accounts, commands, customers, events, outbox
from command_service.domain.errors import AlreadyExistsError, EmailTakenError
from command_service.domain.events import DomainEvent
from command_service.domain.model import Account, AccountStatus, AccountType, Customer
from command_service.idempotency import IdempotencyKey, IdempotencyRaceError, StoredResponse
from shared.envelope import EventEnvelope
from shared.observability import current
from shared.tracing import current_traceparent


class ConcurrentUpdateError(Exception):
    """Another transaction changed an aggregate since we read it; the command is retried."""


@dataclass(frozen=True)
class CommandRecord:
    command_id: str
    command_type: str
    created_at: datetime
    idempotency: IdempotencyKey | None = None
    response: StoredResponse | None = None  # stored only for an idempotent command
    subject: str = "system"  # who sent it: the token's `sub` (audit; scopes idempotency keys)

    def row(self, status: str, error: str | None = None) -> dict:
        values = dict(command_id=self.command_id, command_type=self.command_type,
                      status=status, created_at=_naive_utc(self.created_at),
                      completed_at=_naive_utc(datetime.now(UTC)), error=error,
                      subject=self.subject)
        if self.idempotency is not None and self.response is not None:
            values.update(
                idempotency_key=self.idempotency.key,
                request_fingerprint=self.idempotency.fingerprint,
                expires_at=self.idempotency.expires_at(self.created_at),
                response_status=self.response.status, response_body=self.response.body,
                response_headers=json.dumps(self.response.headers),
            )
        return values


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


class SqlUnitOfWork:
    """`async with SqlUnitOfWork(engine, topic) as uow: ...; await uow.commit(record)`."""

    def __init__(self, engine: AsyncEngine, topic: str) -> None:
        self._engine = engine
        self._topic = topic
        self._conn: AsyncConnection | None = None
        self._lock = None
        # aggregate -> the version it had when loaded (None: new, to be inserted)
        self._tracked: dict[int, tuple[Customer | Account, int | None]] = {}

    async def __aenter__(self) -> SqlUnitOfWork:
        lock = write_lock(self._engine)
        if lock is not None:
            await lock.acquire()
        self._lock = lock  # only once held, so _release never frees another task's hold
        try:
            self._conn = await self._engine.connect()
            await self._conn.begin()
        except BaseException:
            self._release()
            raise
        return self

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    async def __aexit__(self, *exc_info) -> None:
        assert self._conn is not None
        try:
            if self._conn.in_transaction():
                await self._conn.rollback()
        finally:
            try:
                await self._conn.close()
            finally:
                self._release()

    @property
    def connection(self) -> AsyncConnection:
        assert self._conn is not None, "use the unit of work inside `async with`"
        return self._conn

    # -- loading ---------------------------------------------------------------------------

    async def customer(self, customer_id: str) -> Customer | None:
        row = (await self.connection.execute(
            _CUSTOMER, {"customer_id": customer_id})).mappings().first()
        if row is None:
            return None
        customer = Customer(customer_id=row["customer_id"], name=row["name"],
                            email=row["email"], version=row["version"])
        return self._track(customer, customer.version)

    async def email_in_use(self, email: str) -> bool:
        found = await self.connection.scalar(_EMAIL_OWNER, {"email": email.lower()})
        return found is not None

    async def accounts_for_update(self, *account_ids: str) -> dict[str, Account]:
        """Lock the accounts' rows in one stable order (sorted ids), so two commands touching the
        same accounts in opposite roles queue up instead of deadlocking."""
        loaded: dict[str, Account] = {}
        for account_id in sorted(set(account_ids)):
            row = (await self.connection.execute(
                _ACCOUNT_FOR_UPDATE, {"account_id": account_id})).mappings().first()
            if row is None:
                continue
            account = Account(
                account_id=row["account_id"], customer_id=row["customer_id"],
                account_type=AccountType(row["account_type"]), currency=row["currency"],
                balance_minor=row["balance_minor"], status=AccountStatus(row["status"]),
                version=row["version"], freeze_reason=row["freeze_reason"],
                changed_at=row["updated_at"].replace(tzinfo=UTC),
            )
            loaded[account_id] = self._track(account, account.version)
        return loaded

    async def account_owner(self, account_id: str) -> str | None:
        """The customer an account belongs to (it never changes), or None if there is none."""
        return await self.connection.scalar(_ACCOUNT_OWNER, {"account_id": account_id})

    async def account_exists(self, account_id: str) -> bool:
        return await self.account_owner(account_id) is not None

    def add(self, aggregate: Customer | Account) -> None:
        self._track(aggregate, None)

    def owners(self) -> dict[str, str]:
        """account id -> customer id, for every account this command touched."""
        return {a.account_id: a.customer_id for a, _ in self._tracked.values()
                if isinstance(a, Account) and a.pending_events}

    def _track(self, aggregate, loaded_version):
        self._tracked[id(aggregate)] = (aggregate, loaded_version)
        return aggregate

    # -- committing ------------------------------------------------------------------------

    async def commit(self, record: CommandRecord) -> list[EventEnvelope]:
        """Write state, command, events and outbox rows, then commit. Returns the envelopes."""
        now = _naive_utc(record.created_at)
        envelopes: list[EventEnvelope] = []
        try:
            for aggregate, loaded_version in self._tracked.values():
                if not aggregate.pending_events:
                    continue
                await self._save_state(aggregate, loaded_version, now)
                envelopes.extend(envelope_of(e, record.command_id)
                                 for e in aggregate.pending_events)
            await self.connection.execute(_INSERT[commands], record.row("completed"))
            envelopes = await self._append_events(envelopes)
        except IntegrityError as exc:
            raise _translate_integrity_error(exc) from exc
        await self.connection.commit()
        for aggregate, _ in self._tracked.values():
            aggregate.pending_events.clear()
        return envelopes

    async def _save_state(self, aggregate, loaded_version: int | None, now: datetime) -> None:
        if isinstance(aggregate, Customer):
            table, key_id = customers, aggregate.customer_id
            values = dict(name=aggregate.name, email=aggregate.email,
                          email_normalized=aggregate.email.lower(), version=aggregate.version,
                          updated_at=now)
            insert_only = dict(customer_id=key_id, created_at=now)
        else:
            table, key_id = accounts, aggregate.account_id
            values = dict(balance_minor=aggregate.balance_minor, status=str(aggregate.status),
                          version=aggregate.version,
                          updated_at=_naive_utc(aggregate.changed_at) if aggregate.changed_at
                          else now,
                          freeze_reason=aggregate.freeze_reason)
            insert_only = dict(account_id=key_id, customer_id=aggregate.customer_id,
                               account_type=str(aggregate.account_type),
                               currency=aggregate.currency, opened_at=now)
        if loaded_version is None:
            await self.connection.execute(_INSERT[table], {**insert_only, **values})
            return
        # The row lock already serialises writers; the version check makes a lost update
        # impossible even on a backend or code path that forgot to lock.
        result = await self.connection.execute(
            _UPDATE_IF_VERSION[table],
            {**values, "b_key": key_id, "b_loaded_version": loaded_version})
        if result.rowcount != 1:
            raise ConcurrentUpdateError(f"{table.name} changed concurrently")

    async def _append_events(self, envelopes: list[EventEnvelope]) -> list[EventEnvelope]:
        """Insert event rows (which assigns their global positions), then the outbox rows that
        carry each event, position included, as the exact message the relay will send."""
        stored: list[EventEnvelope] = []
        for envelope in envelopes:
            result = await self.connection.execute(_INSERT[events], dict(
                event_id=envelope.event_id, aggregate_type=envelope.aggregate_type,
                aggregate_id=envelope.aggregate_id, version=envelope.version,
                event_type=envelope.event_type, payload=json.dumps(envelope.payload),
                occurred_at=_naive_utc(envelope.occurred_at), command_id=envelope.command_id,
            ))
            stored.append(replace(envelope, position=result.inserted_primary_key[0]))
        if stored:
            now = _naive_utc(datetime.now(UTC))
            await self.connection.execute(_INSERT[outbox], [
                dict(event_position=e.position, topic=self._topic, message_key=e.aggregate_id,
                     headers=json.dumps(outbox_headers(e)),
                     payload=e.to_json(), created_at=now)
                for e in stored
            ])
        return stored


# The statements, built once: building one per call (and its cache key) was a quarter of a
# command's CPU. Parameters are bound at execution; an UPDATE sets the columns it is given.
_CUSTOMER = sa.select(customers).where(customers.c.customer_id == sa.bindparam("customer_id"))
_EMAIL_OWNER = sa.select(customers.c.customer_id).where(
    customers.c.email_normalized == sa.bindparam("email"))
_ACCOUNT_FOR_UPDATE = sa.select(accounts).where(
    accounts.c.account_id == sa.bindparam("account_id")).with_for_update()
_ACCOUNT_OWNER = sa.select(accounts.c.customer_id).where(
    accounts.c.account_id == sa.bindparam("account_id"))
_INSERT = {table: table.insert() for table in (customers, accounts, commands, events, outbox)}
_UPDATE_IF_VERSION = {
    table: table.update().where(key == sa.bindparam("b_key"),
                                table.c.version == sa.bindparam("b_loaded_version"))
    for table, key in ((customers, customers.c.customer_id), (accounts, accounts.c.account_id))
}


def outbox_headers(envelope: EventEnvelope) -> dict[str, str]:
    """The routing headers, plus what lets the relay and the projector continue the
    command's story: its correlation id (the request id), its cause (the command) and,
    when tracing, its trace."""
    headers = {k: v.decode() for k, v in envelope.headers()}
    headers["correlation_id"] = current("correlation_id") or envelope.command_id
    headers["causation_id"] = envelope.command_id
    traceparent = current_traceparent()
    if traceparent:
        headers["traceparent"] = traceparent
    return headers


def envelope_of(event: DomainEvent, command_id: str) -> EventEnvelope:
    """The published form of a domain event (its position is set once it is stored)."""
    return EventEnvelope(
        event_id=str(uuid.uuid4()), event_type=event.event_type,
        aggregate_type=event.aggregate_type, aggregate_id=event.aggregate_id,
        version=event.version, occurred_at=event.occurred_at.astimezone(UTC),
        command_id=command_id, payload=event.payload(),
    )


# What a unique violation names, on each backend: MySQL/MariaDB the index ("for key
# 'uq_…'" or 'PRIMARY'), SQLite the columns ("UNIQUE constraint failed: commands.subject, …").
# Parsed from those parts only: the rest of the message quotes user data (the duplicate value).
_MYSQL_KEY = re.compile(r"for key '(?:\w+\.)?(\w+)'\s*$")
_SQLITE_COLUMNS = re.compile(r"UNIQUE constraint failed: ([\w., ]+)$")
_INSERT_TABLE = re.compile(r"INSERT INTO [`\"]?(\w+)", re.IGNORECASE)
_VIOLATIONS = {
    "uq_commands_subject_idempotency_key": "idempotency",
    "commands.subject,commands.idempotency_key": "idempotency",
    "uq_events_aggregate_version": "aggregate_version",
    "events.aggregate_id,events.version": "aggregate_version",
    "uq_customers_email_normalized": "email",
    "customers.email_normalized": "email",
    "customers.primary": "id", "customers.customer_id": "id",
    "accounts.primary": "id", "accounts.account_id": "id",
}


def unique_violation(exc: IntegrityError) -> str | None:
    """Which uniqueness rule an IntegrityError broke: idempotency, aggregate_version, email,
    id, or None for anything else."""
    message = str(exc.orig.args[-1] if exc.orig.args else exc.orig).strip()
    if found := _MYSQL_KEY.search(message):
        name = found.group(1).lower()
        if name == "primary":
            table = _INSERT_TABLE.search(exc.statement or "")
            name = f"{table.group(1).lower() if table else '?'}.primary"
        return _VIOLATIONS.get(name)
    if found := _SQLITE_COLUMNS.search(message):
        return _VIOLATIONS.get(found.group(1).replace(" ", "").lower())
    return None


def _translate_integrity_error(exc: IntegrityError) -> Exception:
    """A unique index caught a race the pre-checks could not (two requests at once)."""
    violation = unique_violation(exc)
    if violation == "idempotency":
        return IdempotencyRaceError()
    if violation == "aggregate_version":
        return ConcurrentUpdateError("another command appended to the aggregate first")
    if violation == "email":
        return EmailTakenError()
    if violation == "id":
        return AlreadyExistsError("a customer or account", "with this id")
    return exc
