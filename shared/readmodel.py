"""The read models' collections and indexes, known to the projector (which writes them and
creates the indexes at start) and the query service (which reads them).

Each view has a logical name (`accounts`, …) and a physical collection. The `view_registry`
document maps one to the other, so that `rebuild` can fill fresh collections while the old
ones serve and then switch every reader and writer with one atomic single-document write.
"""

from __future__ import annotations

import asyncio
import time

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from shared.config import Settings

ACCOUNTS = "accounts"
CUSTOMERS = "customers"
TRANSACTIONS = "transactions"
DAILY_STATS = "daily_stats"
HISTORY = "history"
DEAD_LETTERS = "dead_letters"
VIEW_REGISTRY = "view_registry"
VIEWS = (ACCOUNTS, CUSTOMERS, TRANSACTIONS, DAILY_STATS, HISTORY)  # what rebuild and verify cover
REGISTRY_TTL_S = 1.0  # how stale a process's idea of the physical collections may be

# A daily-statistics document's figure for each kind of transaction: the projector adds to
# them, the query service prints them and sums them into months.
STATS_FIELDS = {"deposit": "deposits_minor", "withdrawal": "withdrawals_minor",
                "transfer_in": "transfers_in_minor", "transfer_out": "transfers_out_minor"}

INDEXES: dict[str, list[IndexModel]] = {
    TRANSACTIONS: [
        # History pages: newest first by account version; also makes each version unique.
        IndexModel([("account_id", ASCENDING), ("account_version", DESCENDING)],
                   name="account_version", unique=True),
        IndexModel([("account_id", ASCENDING), ("occurred_at", DESCENDING)],
                   name="account_time"),
        # A history page of one kind: no entry of another kind is read to skip it.
        IndexModel([("account_id", ASCENDING), ("kind", ASCENDING),
                    ("account_version", DESCENDING)], name="account_kind_version"),
        # A customer's transactions across accounts, newest first (an index is read backwards
        # for that), and by kind or currency. Ascending keys: SecantusDB treats a `$gte` bound
        # on a descending key as exclusive.
        IndexModel([("customer_id", ASCENDING), ("occurred_at", ASCENDING), ("_id", ASCENDING)],
                   name="customer_time"),
        IndexModel([("customer_id", ASCENDING), ("kind", ASCENDING), ("occurred_at", ASCENDING),
                    ("_id", ASCENDING)], name="customer_kind_time"),
        IndexModel([("customer_id", ASCENDING), ("currency", ASCENDING),
                    ("occurred_at", ASCENDING), ("_id", ASCENDING)],
                   name="customer_currency_time"),
    ],
    CUSTOMERS: [
        IndexModel([("name_lower", ASCENDING)], name="name_lower"),
        IndexModel([("email_lower", ASCENDING)], name="email_lower"),
    ],
    ACCOUNTS: [
        IndexModel([("customer_id", ASCENDING)], name="customer"),
        # Every customer's accounts, newest opened first, whole or by one filter (ascending
        # keys, read backwards: see the customer's transactions above).
        IndexModel([("opened_at", ASCENDING), ("_id", ASCENDING)], name="opened"),
        *(IndexModel([(field, ASCENDING), ("opened_at", ASCENDING), ("_id", ASCENDING)],
                     name=f"{field}_opened") for field in ("status", "currency", "type")),
    ],
    DAILY_STATS: [IndexModel([("customer_id", ASCENDING), ("date", ASCENDING)],
                             name="customer_date")],
    # An aggregate's events, newest first: every page of an account's or a customer's
    # history reads only that aggregate's entries, from its cursor on.
    HISTORY: [IndexModel([("aggregate_id", ASCENDING), ("version", DESCENDING)],
                         name="aggregate_version", unique=True)],
    DEAD_LETTERS: [IndexModel([("aggregate_id", ASCENDING), ("version", ASCENDING)],
                              name="aggregate_version"),
                   IndexModel([("status", ASCENDING)], name="status")],
}


def every_account_index(status: str | None, currency: str | None, type: str | None) -> str:
    """The index the bank-wide account list is read with: the filter that narrows most leads
    (few accounts are frozen or closed; a currency splits them more than a type does). Named,
    for the reason query_service/routers/customers.py gives for its own."""
    for field, value in (("status", status), ("currency", currency), ("type", type)):
        if value is not None:
            return f"{field}_opened"
    return "opened"


def make_mongo_client(settings: Settings) -> AsyncMongoClient:
    # The selection timeout is how long to wait for a store that is down. A busy store gets the
    # longer socket timeout for connecting too: pymongo's heartbeat uses the connect timeout, and
    # a heartbeat that times out interrupts every operation in flight (answered 503).
    # tests/integration/test_busy_read_store.py.
    answer_timeout_ms = max(settings.mongo_timeout_ms * 3, 10_000)
    return AsyncMongoClient(
        settings.mongo_url,
        serverSelectionTimeoutMS=settings.mongo_timeout_ms,
        connectTimeoutMS=answer_timeout_ms,
        socketTimeoutMS=answer_timeout_ms,
        tz_aware=True,
        uuidRepresentation="standard",
    )


async def ensure_indexes(db: AsyncDatabase, physical: dict[str, str] | None = None) -> None:
    """Create the indexes of every view, in the physical collections `physical` names."""
    for collection, indexes in INDEXES.items():
        await db[(physical or {}).get(collection, collection)].create_indexes(indexes)


async def read_registry(db: AsyncDatabase) -> dict[str, str]:
    """Logical view name -> physical collection; a view never rebuilt is its own name."""
    doc = await db[VIEW_REGISTRY].find_one({"_id": "views"}) or {}
    return {view: doc.get(view, view) for view in VIEWS}


async def switch_views(db: AsyncDatabase, physical: dict[str, str]) -> None:
    """Point readers and writers at new collections: one atomic single-document write."""
    await db[VIEW_REGISTRY].update_one({"_id": "views"}, {"$set": physical}, upsert=True)


class ViewDatabase:
    """The read store as views see it: `views[ACCOUNTS]` is the collection currently serving
    the accounts view. The registry is re-read at most every REGISTRY_TTL_S, so a switch is
    followed within about a second, without a restart."""

    def __init__(self, db: AsyncDatabase, ttl_s: float = REGISTRY_TTL_S,
                 fixed: dict[str, str] | None = None) -> None:
        """`fixed`: always these collections, whatever the registry says (a rebuild's)."""
        self.db = db
        self._ttl_s = ttl_s
        self._fixed = fixed is not None
        self._physical: dict[str, str] = dict(fixed) if fixed else {v: v for v in VIEWS}
        self._read_at = float("-inf")
        # One registry read at a time: the requests that find it stale together wait for it
        # rather than each asking the store.
        self._reading = asyncio.Lock()
        # pymongo builds a new collection object, options and all, on every db[name].
        self._collections: dict[str, AsyncCollection] = {}

    async def refresh(self) -> ViewDatabase:
        if not self._fixed and self._stale():
            async with self._reading:
                if self._stale():
                    self._physical = await read_registry(self.db)
                    self._read_at = time.monotonic()
        return self

    def _stale(self) -> bool:
        return time.monotonic() - self._read_at >= self._ttl_s

    def __getitem__(self, view: str) -> AsyncCollection:
        name = self._physical.get(view, view)
        collection = self._collections.get(name)
        if collection is None:
            collection = self._collections[name] = self.db[name]
        return collection

    async def command(self, *args, **kwargs):
        return await self.db.command(*args, **kwargs)
