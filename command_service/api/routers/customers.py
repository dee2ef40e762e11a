from __future__ import annotations

import uuid

from fastapi import APIRouter

from command_service.api.execution import Runner
from command_service.api.schemas import CustomerCreated, RegisterCustomerIn
from command_service.domain.commands import RegisterCustomer
from shared.http import ERROR_RESPONSES

router = APIRouter(prefix="/v1/customers", tags=["customers"])


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
