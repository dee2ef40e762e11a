from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from query_service import access, views
from query_service.consistency import Consistency, read_consistent
from query_service.deps import ConsistencyDep, Db, Reader
from query_service.filters import Cursor, From, Kind, Limit, To, time_window
from query_service.schemas import AccountView, TransactionPage
from shared.auth import Principal
from shared.cursors import decode_cursor, encode_cursor
from shared.http import ERROR_RESPONSES, ApiError, json_response
from shared.readmodel import ACCOUNTS, TRANSACTIONS

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])
VIEW_ERRORS = {k: ERROR_RESPONSES[k] for k in (404, 422, 503)}


async def _account(db: Db, account_id: UUID, consistency: Consistency,
                   reader: Principal) -> dict:
    """The account view, if the reader may see it (a customer's token: its own accounts)."""
    key = str(account_id)
    doc = await read_consistent(
        lambda: db[ACCOUNTS].find_one({"_id": key}),
        # Another customer's account is refused at once, without waiting for versions.
        lambda d: consistency.wants(key, d["version"] if d else None)
        and (d is None or access.may_see(reader, d["customer_id"])),
        consistency,
    )
    if doc is None:
        raise ApiError(404, "account_not_found", f"account {key} does not exist")
    access.ensure_may_see_account(reader, doc)
    return doc


@router.get("/{account_id}", response_model=AccountView, responses=VIEW_ERRORS,
            summary="One account: balance, status, version, transaction count")
async def account(account_id: UUID, db: Db, consistency: ConsistencyDep,
                  reader: Reader) -> Response:
    return json_response(views.account_view(await _account(db, account_id, consistency, reader)))


@router.get("/{account_id}/transactions", response_model=TransactionPage,
            responses=VIEW_ERRORS, summary="Transaction history, newest first")
async def transactions(
    account_id: UUID,
    db: Db,
    consistency: ConsistencyDep,
    reader: Reader,
    from_: From = None,
    to: To = None,
    kind: Kind = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    # The account view is written after its transactions, so once it holds a version, the
    # history holds every entry up to that version.
    await _account(db, account_id, consistency, reader)
    match: dict = {"account_id": str(account_id)}
    if kind is not None:
        match["kind"] = kind
    match.update(time_window(from_, to))
    if cursor is not None:
        match["account_version"] = {"$lt": decode_cursor(cursor, {"before": int})["before"]}
    docs = await db[TRANSACTIONS].find(match).sort("account_version", -1) \
        .limit(limit + 1).to_list()
    page = docs[:limit]
    next_cursor = (encode_cursor({"before": page[-1]["account_version"]})
                   if len(docs) > limit else None)
    return json_response({"items": [views.transaction_item(d) for d in page],
                          "next_cursor": next_cursor})
