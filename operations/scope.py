"""What one `verify` check covers: every customer (the whole-log `verify`), or a few customers
with their accounts (`verify --customer`, `--account`, and each pass of `verify --watch`).

A customer is the unit because it is the unit of every view that spans aggregates: its 360
view lists its accounts and its daily statistics sum them, so an account can only be checked
together with its customer and siblings; and `--repair` re-projects a customer. A scoped check
reads only its customers' state rows, their events (by the (aggregate, version) index) and
their documents (by `$in` on indexed fields), so it costs what those customers hold, not what
the log holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from command_service.state_reads import (
    AccountState,
    CustomerState,
    account_states,
    customer_states,
)
from shared.readmodel import ACCOUNTS, CUSTOMERS, DAILY_STATS, HISTORY, TRANSACTIONS


@dataclass(frozen=True)
class Scope:
    customer_ids: tuple[str, ...] | None = None  # None: every customer

    @classmethod
    def of(cls, customer_ids) -> Scope:
        return cls(tuple(sorted(set(customer_ids))))

    @property
    def everything(self) -> bool:
        return self.customer_ids is None


EVERYTHING = Scope()


@dataclass
class ScopeRows:
    """The write model's state rows of a scope, and the document filters they imply."""

    scope: Scope
    accounts: dict[str, AccountState]
    customers: dict[str, CustomerState]

    @classmethod
    async def load(cls, engine: AsyncEngine, scope: Scope) -> ScopeRows:
        ids = None if scope.everything else list(scope.customer_ids)
        return cls(scope, await account_states(engine, ids), await customer_states(engine, ids))

    @property
    def aggregate_ids(self) -> list[str]:
        return [*self.scope.customer_ids, *self.accounts]

    def filters(self, view: str) -> list[dict]:
        """The queries that find every document of `view` the scope owns. Accounts are looked
        up both by id and by customer, so a document under the wrong customer is still seen."""
        if self.scope.everything:
            return [{}]
        customers, accounts = list(self.scope.customer_ids), list(self.accounts)
        return {
            ACCOUNTS: [{"_id": {"$in": accounts}}, {"customer_id": {"$in": customers}}],
            CUSTOMERS: [{"_id": {"$in": customers}}],
            TRANSACTIONS: [{"account_id": {"$in": accounts}}],
            DAILY_STATS: [{"customer_id": {"$in": customers}}],
            HISTORY: [{"aggregate_id": {"$in": self.aggregate_ids}}],
        }[view]


async def find_all(collection, filters: list[dict]) -> dict[str, dict]:
    """The documents any of `filters` selects, by id."""
    return {doc["_id"]: doc for where in filters async for doc in collection.find(where)}
