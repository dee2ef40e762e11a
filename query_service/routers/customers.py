from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response

from query_service import access, etags, views
from query_service.conditional import ConditionalDep
from query_service.consistency import Consistency, read_consistent
from query_service.deps import ConsistencyDep, Db, Reader
from query_service.filters import (
    CurrencyFilter,
    Cursor,
    From,
    Kind,
    Limit,
    StatusFilter,
    To,
    TypeFilter,
    aware,
    time_window,
)
from query_service.schemas import (
    AccountList,
    Customer360,
    CustomerMonthlyStats,
    CustomerPage,
    CustomerStats,
    CustomerStatus,
    TransactionPage,
)
from shared.auth import Principal
from shared.cursors import (
    continue_newest_first,
    decode_cursor,
    encode_cursor,
    newest_first_cursor,
)
from shared.http import ERROR_RESPONSES, ApiError
from shared.money import Currency
from shared.readmodel import CUSTOMERS, DAILY_STATS, STATS_FIELDS, TRANSACTIONS

router = APIRouter(prefix="/v1/customers", tags=["customers"])
VIEW_ERRORS = {k: ERROR_RESPONSES[k] for k in (404, 422, 503)}


def customer_behind(customer_id: str, consistency: Consistency):
    def behind(doc: dict | None) -> bool:
        if doc is None or doc.get("version", 0) == 0:
            return customer_id in consistency.versions
        entries = {entry["account_id"]: entry["version"] for entry in doc["accounts"]}
        return consistency.wants(customer_id, doc["version"]) or any(
            consistency.wants(account_id, version) for account_id, version in entries.items()
        ) or any(  # an account of this customer the token names, listed or not yet
            consistency.wants(key, entries.get(key.split("/", 1)[1]))
            for key in consistency.versions if key.startswith(f"{customer_id}/")
        )
    return behind


async def visible_customer(db: Db, customer_id: UUID, consistency: Consistency,
                           reader: Principal) -> dict:
    """The customer view the reader may see, once it holds what the consistency token names
    (its GET and its event stream read it so)."""
    key = str(customer_id)
    access.ensure_may_see_customer(reader, key)
    doc = await read_consistent(lambda: db[CUSTOMERS].find_one({"_id": key}),
                                customer_behind(key, consistency), consistency)
    return registered(doc, key)


def registered(doc: dict | None, customer_id: str) -> dict:
    """The customer view, or 404 where it does not exist yet. Version 0: account events
    arrived before the customer's registration was applied."""
    if doc is None or doc.get("version", 0) == 0:
        raise ApiError(404, "customer_not_found", f"customer {customer_id} does not exist")
    return doc


@router.get("", response_model=CustomerPage, responses=VIEW_ERRORS,
            summary="Search customers by name or email")
async def search_customers(
    db: Db,
    reader: Reader,
    conditional: ConditionalDep,
    q: Annotated[str, Query(max_length=200,
                            description="case-insensitive text in name or email")] = "",
    status: Annotated[CustomerStatus | None, Query(description="only customers in this status")]
    = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    # The search text is escaped: it is matched as text, never as a pattern or an operator.
    needle = re.escape(q.lower())
    match: dict = {"version": {"$gte": 1}}
    if needle:
        match["$or"] = [{"name_lower": {"$regex": needle}}, {"email_lower": {"$regex": needle}}]
    if status is not None:  # "not closed" also finds views projected before statuses existed
        match["status"] = "closed" if status == "closed" else {"$ne": "closed"}
    if reader.restricted:  # a customer's token finds at most its own customer
        match["_id"] = {"$eq": reader.customer_id}
    if cursor is not None:
        match.setdefault("_id", {})["$gt"] = decode_cursor(cursor, {"after": str})["after"]
    shown = {"name": 1, "email": 1, "status": 1, "version": 1}  # the version: for the ETag
    docs = await db[CUSTOMERS].find(match, shown).sort("_id", 1) \
        .limit(limit + 1).to_list()
    page = docs[:limit]
    next_cursor = encode_cursor({"after": page[-1]["_id"]}) if len(docs) > limit else None
    return conditional.answer(
        etags.versioned_page_etag("customers", page, next_cursor),
        lambda: {"items": [views.customer_item(d) for d in page], "next_cursor": next_cursor})


@router.get("/{customer_id}", response_model=Customer360, responses=VIEW_ERRORS,
            summary="Customer 360: profile, every account, totals per currency")
async def customer_360(customer_id: UUID, db: Db, consistency: ConsistencyDep,
                       reader: Reader, conditional: ConditionalDep) -> Response:
    doc = await visible_customer(db, customer_id, consistency, reader)
    return conditional.answer(etags.customer_360_etag(doc), lambda: views.customer_360(doc))


@router.get("/{customer_id}/accounts", response_model=AccountList, responses=VIEW_ERRORS,
            summary="The customer's accounts, closed ones included; each filter optional")
async def customer_accounts(
    customer_id: UUID,
    db: Db,
    consistency: ConsistencyDep,
    reader: Reader,
    conditional: ConditionalDep,
    status: StatusFilter = None,
    currency: CurrencyFilter = None,
    type: TypeFilter = None,
) -> Response:
    doc = await visible_customer(db, customer_id, consistency, reader)
    wanted = {"status": status, "currency": currency, "type": type}
    entries = [entry for entry in doc["accounts"]
               if all(value is None or entry[name] == value for name, value in wanted.items())]
    return conditional.answer(etags.account_list_etag(entries),
                              lambda: {"items": [views.account_summary(a) for a in entries]})


@router.get("/{customer_id}/transactions", response_model=TransactionPage,
            responses=VIEW_ERRORS,
            summary="Transactions of every account of the customer, newest first")
async def customer_transactions(
    customer_id: UUID,
    db: Db,
    consistency: ConsistencyDep,
    reader: Reader,
    conditional: ConditionalDep,
    from_: From = None,
    to: To = None,
    kind: Kind = None,
    currency: Annotated[Currency | None, Query(description="only this currency")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    # Transactions are written before the customer view, so once the customer view holds the
    # token's versions, so do they.
    await visible_customer(db, customer_id, consistency, reader)
    match: dict = {"customer_id": str(customer_id), **time_window(from_, to)}
    if kind is not None:
        match["kind"] = kind
    if currency is not None:
        match["currency"] = currency
    if cursor is not None:
        continue_newest_first(match, cursor, "occurred_at")
    docs = await db[TRANSACTIONS].find(match).sort(NEWEST_FIRST) \
        .hint(customer_transactions_index(kind, currency)).limit(limit + 1).to_list()
    page, next_cursor = docs[:limit], newest_first_cursor(docs, limit, "occurred_at")
    return conditional.answer(
        etags.transactions_etag(page, next_cursor),
        lambda: {"items": [views.transaction_item(d) for d in page], "next_cursor": next_cursor})


NEWEST_FIRST = [("occurred_at", -1), ("_id", -1)]


def customer_transactions_index(kind: str | None, currency: str | None) -> str:
    """The index a customer's transactions are read with. Named, because with both filters
    a planner may find no index that holds all three fields and scan the collection instead
    (SecantusDB does); the kind's index narrows at least as well as the currency's."""
    if kind is not None:
        return "customer_kind_time"
    return "customer_currency_time" if currency is not None else "customer_time"


@router.get("/{customer_id}/stats", response_model=CustomerStats | CustomerMonthlyStats,
            responses=VIEW_ERRORS,
            summary="Daily (or monthly) figures per currency: deposits, withdrawals, transfers")
async def customer_stats(
    customer_id: UUID,
    db: Db,
    consistency: ConsistencyDep,
    reader: Reader,
    conditional: ConditionalDep,
    from_: Annotated[date | datetime | None,
                     Query(alias="from", description="first day (ISO 8601), inclusive")] = None,
    to: Annotated[date | datetime | None,
                  Query(description="last day (ISO 8601), inclusive")] = None,
    granularity: Annotated[Literal["day", "month"], Query(
        description="`month`: the sums of the days of each calendar month (UTC)")] = "day",
) -> Response:
    # Statistics are written before the customer view, so a customer view that holds the
    # token's versions means the statistics hold them too.
    await visible_customer(db, customer_id, consistency, reader)
    match: dict = {"customer_id": str(customer_id)}
    window = {}
    if from_ is not None:
        window["$gte"] = _utc_day(from_)
    if to is not None:
        window["$lte"] = _utc_day(to)
    if window:
        match["date"] = window
    docs = await db[DAILY_STATS].find(match).sort([("date", 1), ("currency", 1)]).to_list()
    etag = etags.stats_etag(docs, granularity)
    if granularity == "month":
        # Summed from the days as they are read: each day is exact under redelivery (its
        # `applied` versions), so their sum is too, with no second view to keep in step.
        return conditional.answer(
            etag, lambda: {"months": [views.monthly_figures(m) for m in _months(docs)]})
    return conditional.answer(etag, lambda: {"days": [views.daily_figures(d) for d in docs]})


def _months(days: list[dict]) -> list[dict]:
    months: dict[tuple[str, str], dict] = {}
    for day in days:
        key = (day["date"][:7], day["currency"])
        month = months.setdefault(key, {"month": key[0], "currency": key[1], "count": 0,
                                        **{name: 0 for name in STATS_FIELDS.values()}})
        month["count"] += day["count"]
        for name in STATS_FIELDS.values():
            month[name] += day[name]
    return [months[key] for key in sorted(months)]


def _utc_day(moment: date | datetime) -> str:
    if isinstance(moment, datetime):
        return aware(moment).astimezone(UTC).date().isoformat()
    return moment.isoformat()
