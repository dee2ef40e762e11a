from __future__ import annotations

import uuid
from uuid import UUID

from fastapi import APIRouter

from command_service.api.command_route import CommandRoute
from command_service.api.execution import Runner
from command_service.api.schemas import (
    ChangeCustomerIn,
    CloseCustomerIn,
    CustomerChangedOut,
    CustomerClosedOut,
    CustomerCreated,
    RegisterCustomerIn,
)
from command_service.domain.commands import ChangeCustomer, CloseCustomer, RegisterCustomer
from shared.http import ERROR_RESPONSES

router = APIRouter(prefix="/v1/customers", tags=["customers"], route_class=CommandRoute)
REFUSALS = {k: ERROR_RESPONSES[k] for k in (404, 409, 413, 422, 503)}


@router.post("", status_code=201, response_model=CustomerCreated,
             responses={k: ERROR_RESPONSES[k] for k in (409, 413, 422, 503)},
             summary="Register a customer")
async def register_customer(body: RegisterCustomerIn, run: Runner):
    # A customer's token registers its own customer: that id, unless the body names another
    # (which the service then refuses).
    command = RegisterCustomer(
        name=body.name, email=str(body.email),
        customer_id=str(body.customer_id or run.own_customer_id() or uuid.uuid4()),
    )
    return await run(command, 201)


@router.patch("/{customer_id}", response_model=CustomerChangedOut, responses=REFUSALS,
              summary="Change a customer's name or email (one event per changed field)")
async def change_customer(customer_id: UUID, body: ChangeCustomerIn, run: Runner):
    command = ChangeCustomer(customer_id=str(customer_id), name=body.name,
                             email=None if body.email is None else str(body.email))
    return await run(command, 200)


@router.post("/{customer_id}/close", response_model=CustomerClosedOut, responses=REFUSALS,
             summary="Close a customer whose accounts are all closed; frees its email")
async def close_customer(customer_id: UUID, body: CloseCustomerIn, run: Runner):
    return await run(CloseCustomer(customer_id=str(customer_id), reason=body.reason or None),
                     200)
