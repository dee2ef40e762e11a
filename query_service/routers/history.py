"""Every event of one account or one customer, newest first: what happened to it, when, and by
which command, lifecycle events included."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from query_service import access, etags, views
from query_service.conditional import Conditional, ConditionalDep
from query_service.consistency import read_consistent
from query_service.deps import ConsistencyDep, Db, Reader
from query_service.filters import Cursor, Limit
from query_service.routers.accounts import visible_account
from query_service.routers.customers import registered
from query_service.schemas import HistoryPage
from shared.cursors import below_cursor, continue_below
from shared.http import ERROR_RESPONSES
from shared.readmodel import CUSTOMERS, HISTORY, ViewDatabase

router = APIRouter(tags=["history"])
VIEW_ERRORS = {k: ERROR_RESPONSES[k] for k in (404, 422, 503)}


@router.get("/v1/accounts/{account_id}/history", response_model=HistoryPage,
            responses=VIEW_ERRORS, summary="Every event of the account, newest first")
async def account_history(account_id: UUID, db: Db, consistency: ConsistencyDep,
                          reader: Reader, conditional: ConditionalDep, limit: Limit = 50,
                          cursor: Cursor = None) -> Response:
    # The account view is written after the history, so once it holds a version, the history
    # holds every entry up to that version.
    await visible_account(db, account_id, consistency, reader)
    return await _page(db, str(account_id), limit, cursor, conditional)


@router.get("/v1/customers/{customer_id}/history", response_model=HistoryPage,
            responses=VIEW_ERRORS,
            summary="Every event of the customer itself (not of its accounts), newest first")
async def customer_history(customer_id: UUID, db: Db, consistency: ConsistencyDep,
                           reader: Reader, conditional: ConditionalDep, limit: Limit = 50,
                           cursor: Cursor = None) -> Response:
    key = str(customer_id)
    access.ensure_may_see_customer(reader, key)
    # The customer view is written after the history; its own version counts its own events
    # (its accounts' versions, which the token may name too, are not this history's).
    doc = await read_consistent(
        lambda: db[CUSTOMERS].find_one({"_id": key}, {"version": 1}),
        lambda d: consistency.wants(key, d.get("version", 0) if d else None), consistency)
    registered(doc, key)
    return await _page(db, key, limit, cursor, conditional)


async def _page(db: ViewDatabase, aggregate_id: str, limit: int, cursor: str | None,
                conditional: Conditional) -> Response:
    """Newest first by version; the cursor is the last version served, so events appended
    while a client pages (all of them newer) never shift a later page."""
    match: dict = {"aggregate_id": aggregate_id}
    if cursor is not None:
        continue_below(match, cursor, "version")
    docs = await db[HISTORY].find(match).sort("version", -1).hint("aggregate_version") \
        .limit(limit + 1).to_list()
    page, next_cursor = docs[:limit], below_cursor(docs, limit, "version")
    return conditional.answer(
        etags.history_etag(page, next_cursor),
        lambda: {"items": [views.history_item(d) for d in page], "next_cursor": next_cursor})
