"""The read models' collections and indexes, known to the projector (which writes them and
creates the indexes at start) and the query service (which reads them)."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from shared.config import Settings

ACCOUNTS = "accounts"
CUSTOMERS = "customers"
TRANSACTIONS = "transactions"
DAILY_STATS = "daily_stats"
DEAD_LETTERS = "dead_letters"

INDEXES: dict[str, list[IndexModel]] = {
    TRANSACTIONS: [
        # History pages: newest first by account version; also makes each version unique.
        IndexModel([("account_id", ASCENDING), ("account_version", DESCENDING)],
                   name="account_version", unique=True),
        IndexModel([("account_id", ASCENDING), ("occurred_at", DESCENDING)],
                   name="account_time"),
    ],
    CUSTOMERS: [
        IndexModel([("name_lower", ASCENDING)], name="name_lower"),
        IndexModel([("email_lower", ASCENDING)], name="email_lower"),
    ],
    ACCOUNTS: [IndexModel([("customer_id", ASCENDING)], name="customer")],
    DAILY_STATS: [IndexModel([("customer_id", ASCENDING), ("date", ASCENDING)],
                             name="customer_date")],
}


def make_mongo_client(settings: Settings) -> AsyncMongoClient:
    return AsyncMongoClient(
        settings.mongo_url,
        serverSelectionTimeoutMS=settings.mongo_timeout_ms,
        connectTimeoutMS=settings.mongo_timeout_ms,
        socketTimeoutMS=max(settings.mongo_timeout_ms * 3, 10_000),
        tz_aware=True,
        uuidRepresentation="standard",
    )


async def ensure_indexes(db: AsyncDatabase) -> None:
    for collection, indexes in INDEXES.items():
        await db[collection].create_indexes(indexes)
