from __future__ import annotations

import uuid
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body

from command_service.api.command_route import CommandRoute
from command_service.api.execution import Runner
from command_service.api.schemas import (
    AccountOpenedOut,
    AccountStatusOut,
    EmptyIn,
    FreezeIn,
    MoneyMovedOut,
    MoneyMovementIn,
    OpenAccountIn,
)
from command_service.domain import commands as c
from command_service.domain.model import AccountType
from shared.http import ERROR_RESPONSES

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], route_class=CommandRoute)
REFUSALS = {k: ERROR_RESPONSES[k] for k in (404, 409, 413, 422, 503)}


@router.post("", status_code=201, response_model=AccountOpenedOut, responses=REFUSALS,
             summary="Open an account, optionally with an initial deposit")
async def open_account(body: OpenAccountIn, run: Runner):
    command = c.OpenAccount(
        customer_id=str(body.customer_id), account_type=AccountType(body.type),
        currency=str(body.currency), initial_deposit_minor=body.initial_deposit or 0,
        account_id=str(body.account_id or uuid.uuid4()),
    )
    return await run(command, 201)


@router.post("/{account_id}/deposits", status_code=201, response_model=MoneyMovedOut,
             responses=REFUSALS, summary="Deposit money")
async def deposit(account_id: UUID, body: MoneyMovementIn, run: Runner):
    command = c.Deposit(account_id=str(account_id), amount_minor=body.amount,
                        reference=body.reference)
    return await run(command, 201)


@router.post("/{account_id}/withdrawals", status_code=201, response_model=MoneyMovedOut,
             responses=REFUSALS, summary="Withdraw money; never below a zero balance")
async def withdraw(account_id: UUID, body: MoneyMovementIn, run: Runner):
    command = c.Withdraw(account_id=str(account_id), amount_minor=body.amount,
                         reference=body.reference)
    return await run(command, 201)


@router.post("/{account_id}/freeze", response_model=AccountStatusOut, responses=REFUSALS,
             summary="Freeze an account: deposits only, no debits")
async def freeze(account_id: UUID, body: FreezeIn, run: Runner):
    return await run(c.FreezeAccount(str(account_id), body.reason), 200)


@router.post("/{account_id}/unfreeze", response_model=AccountStatusOut, responses=REFUSALS,
             summary="Unfreeze a frozen account")
async def unfreeze(account_id: UUID, run: Runner,
                   body: Annotated[EmptyIn, Body()]):
    return await run(c.UnfreezeAccount(str(account_id)), 200)


@router.post("/{account_id}/close", response_model=AccountStatusOut, responses=REFUSALS,
             summary="Close an account with a zero balance")
async def close(account_id: UUID, run: Runner, body: Annotated[EmptyIn, Body()]):
    return await run(c.CloseAccount(str(account_id)), 200)
