from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

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
    time_window,
)
from query_service.schemas import AccountPage, AccountView, TransactionPage
from shared.auth import Principal
from shared.cursors import (
    below_cursor,
    continue_below,
    continue_newest_first,
    newest_first_cursor,
)
from shared.http import ERROR_RESPONSES, ApiError
from shared.readmodel import ACCOUNTS, TRANSACTIONS, every_account_index

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])
VIEW_ERRORS = {k: ERROR_RESPONSES[k] for k in (404, 422, 503)}


async def visible_account(db: Db, account_id: UUID, consistency: Consistency,
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


@router.get("", response_model=AccountPage, responses=VIEW_ERRORS,
            summary="Accounts of every customer, newest opened first (bank-wide tokens only)")
async def every_account(
    db: Db,
    consistency: ConsistencyDep,
    reader: Reader,
    conditional: ConditionalDep,
    status: StatusFilter = None,
    currency: CurrencyFilter = None,
    type: TypeFilter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    access.ensure_may_list_every_account(reader)
    await _holds_token_accounts(db, consistency)
    match = {name: value for name, value in
             (("status", status), ("currency", currency), ("type", type)) if value is not None}
    if cursor is not None:
        continue_newest_first(match, cursor, "opened_at")
    docs = await db[ACCOUNTS].find(match).sort([("opened_at", -1), ("_id", -1)]) \
        .hint(every_account_index(status, currency, type)).limit(limit + 1).to_list()
    page, next_cursor = docs[:limit], newest_first_cursor(docs, limit, "opened_at")
    return conditional.answer(
        etags.versioned_page_etag("accounts", page, next_cursor),
        lambda: {"items": [views.account_view(d) for d in page], "next_cursor": next_cursor})


async def _holds_token_accounts(db: Db, consistency: Consistency) -> None:
    """Wait until every account the token names is in its view at the token's version, so a
    list read after a command shows what the command did (the token names each account under
    "<customer id>/<account id>" as well)."""
    wanted = {key.split("/", 1)[1] for key in consistency.versions if "/" in key}
    if not wanted:
        return

    async def held() -> dict[str, int]:
        docs = await db[ACCOUNTS].find({"_id": {"$in": sorted(wanted)}}, {"version": 1}) \
            .to_list()
        return {doc["_id"]: doc["version"] for doc in docs}

    await read_consistent(held, lambda versions: any(
        consistency.wants(account_id, versions.get(account_id)) for account_id in wanted),
        consistency)


@router.get("/{account_id}", response_model=AccountView, responses=VIEW_ERRORS,
            summary="One account: balance, status, version, transaction count")
async def account(account_id: UUID, db: Db, consistency: ConsistencyDep,
                  reader: Reader, conditional: ConditionalDep) -> Response:
    doc = await visible_account(db, account_id, consistency, reader)
    return conditional.answer(etags.account_etag(doc), lambda: views.account_view(doc))


@router.get("/{account_id}/transactions", response_model=TransactionPage,
            responses=VIEW_ERRORS, summary="Transaction history, newest first")
async def transactions(
    account_id: UUID,
    db: Db,
    consistency: ConsistencyDep,
    reader: Reader,
    conditional: ConditionalDep,
    from_: From = None,
    to: To = None,
    kind: Kind = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    # The account view is written after its transactions, so once it holds a version, the
    # history holds every entry up to that version.
    await visible_account(db, account_id, consistency, reader)
    match: dict = {"account_id": str(account_id)}
    if kind is not None:
        match["kind"] = kind
    match.update(time_window(from_, to))
    if cursor is not None:
        continue_below(match, cursor, "account_version")
    docs = await db[TRANSACTIONS].find(match).sort("account_version", -1) \
        .limit(limit + 1).to_list()
    page, next_cursor = docs[:limit], below_cursor(docs, limit, "account_version")
    return conditional.answer(
        etags.transactions_etag(page, next_cursor),
        lambda: {"items": [views.transaction_item(d) for d in page], "next_cursor": next_cursor})
