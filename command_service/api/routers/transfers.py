from __future__ import annotations

from fastapi import APIRouter

from command_service.api.command_route import CommandRoute
from command_service.api.execution import Runner
from command_service.api.schemas import TransferIn, TransferOut
from command_service.domain.commands import Transfer
from shared.http import ERROR_RESPONSES

router = APIRouter(prefix="/v1/transfers", tags=["transfers"], route_class=CommandRoute)


@router.post("", status_code=201, response_model=TransferOut,
             responses={k: ERROR_RESPONSES[k] for k in (404, 409, 413, 422, 503)},
             summary="Move money between two accounts of one currency, atomically")
async def transfer(body: TransferIn, run: Runner):
    command = Transfer(from_account_id=str(body.from_account_id),
                       to_account_id=str(body.to_account_id), amount_minor=body.amount,
                       reference=body.reference)
    return await run(command, 201)
