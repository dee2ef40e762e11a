"""Query filters that several views share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Query

from query_service.schemas import AccountType, Status, TransactionKind
from shared.money import Currency


def aware(moment: datetime) -> datetime:
    """A time without a zone is read as UTC, like every time this service prints."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def time_window(from_: datetime | None, to: datetime | None) -> dict:
    """`{"occurred_at": …}` for `from` (inclusive) to `to` (exclusive); empty for neither."""
    window = {}
    if from_ is not None:
        window["$gte"] = aware(from_)
    if to is not None:
        window["$lt"] = aware(to)
    return {"occurred_at": window} if window else {}


# The query parameters that several lists share, declared once.
From = Annotated[datetime | None, Query(alias="from", description="ISO 8601, inclusive")]
To = Annotated[datetime | None, Query(description="ISO 8601, exclusive")]
Kind = Annotated[TransactionKind | None, Query(description="only this kind")]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=512)]
# An account list's filters (a customer's accounts, every account), each optional.
StatusFilter = Annotated[Status | None, Query(description="only accounts in this status")]
CurrencyFilter = Annotated[Currency | None, Query(description="only accounts in this currency")]
TypeFilter = Annotated[AccountType | None, Query(description="only accounts of this type")]
