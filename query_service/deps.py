"""FastAPI dependencies of the query service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from query_service.consistency import Consistency
from shared.auth import Principal, require_reader
from shared.config import Settings
from shared.consistency import InvalidToken, decode_token
from shared.http import ApiError
from shared.ratelimit import ensure_within_rate
from shared.readmodel import ViewDatabase


async def get_db(request: Request) -> ViewDatabase:
    """The read store with each view resolved to the collection serving it right now."""
    return await request.app.state.db.refresh()


async def get_consistency(
    request: Request,
    token: Annotated[str | None, Header(alias="X-Consistency-Token",
                                        description="from a command response")] = None,
    wait_ms: Annotated[int | None, Header(alias="X-Consistency-Wait-Ms", ge=0,
                                          description="how long to wait, at most 10000")] = None,
) -> Consistency:
    if token is None:
        return Consistency()
    try:
        versions = decode_token(token)
    except InvalidToken as exc:
        raise ApiError(422, "validation_error", "the request is malformed",
                       [{"field": "X-Consistency-Token", "message": str(exc)}]) from None
    # The app's settings, read here rather than through a sub-dependency: each level of
    # dependencies costs FastAPI tens of microseconds per request.
    settings: Settings = request.app.state.settings
    if wait_ms is None:
        wait_ms = settings.consistency_wait_default_ms
    wait_ms = min(wait_ms, settings.consistency_wait_max_ms)
    return Consistency(versions, wait_ms / 1000)


async def rate_limited_reader(
    request: Request, reader: Annotated[Principal, Depends(require_reader)],
) -> Principal:
    """The reader, if its subject is within its rate of queries (a token bucket per subject,
    apart from its commands' on the command service). Every view's router runs it, before
    the read store is asked anything."""
    ensure_within_rate(request.app.state.query_limiter, reader, "queries")
    return reader


Db = Annotated[ViewDatabase, Depends(get_db)]
ConsistencyDep = Annotated[Consistency, Depends(get_consistency)]
# The caller, whose token has accounts:read (the routers are guarded by the same dependency,
# so it runs once per request).
Reader = Annotated[Principal, Depends(require_reader)]
