"""What the handlers and the access checks may ask of a unit of work, as Protocols: the SQL one
(unit_of_work.py, db/repository.py) is one implementation, a test's in-memory fake another.
Nothing here imports SQL, so handlers can be tested without a database."""

from __future__ import annotations

from typing import Protocol

from command_service.domain.model import Account, Customer


class Aggregates(Protocol):
    """The customers and accounts one command reads and changes."""

    async def customer(self, customer_id: str, *, for_update: bool = False) -> Customer | None:
        """The customer, locked until the command ends when `for_update`."""
        ...

    async def email_owner(self, email: str) -> str | None:
        """The customer that is not closed and has this email (case-insensitive), if any."""
        ...

    async def open_account_count(self, customer_id: str) -> int:
        """How many of the customer's accounts are not closed."""
        ...

    async def accounts_for_update(self, *account_ids: str) -> dict[str, Account]:
        """The accounts that exist among `account_ids`, locked until the command ends."""
        ...

    async def account_owner(self, account_id: str) -> str | None:
        """The customer an account belongs to (it never changes), or None if there is none."""
        ...

    async def account_exists(self, account_id: str) -> bool: ...

    def add(self, aggregate: Customer | Account) -> None:
        """A new aggregate, saved with its events when the command commits."""
        ...


class UnitOfWork(Protocol):
    """One command's transaction, as its handler sees it: a handler loads and adds aggregates;
    it never commits (the service does, once the handler has answered)."""

    @property
    def aggregates(self) -> Aggregates: ...
