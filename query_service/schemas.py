"""Response models of the query service: they document the views in the OpenAPI schema."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

Status = Literal["active", "frozen", "closed"]
AccountType = Literal["checking", "savings"]
CustomerStatus = Literal["active", "closed"]
TransactionKind = Literal["deposit", "withdrawal", "transfer_in", "transfer_out"]


class AccountSummary(BaseModel):
    account_id: str
    type: AccountType
    currency: str
    balance: str
    status: Status
    version: int
    opened_at: str
    last_transaction_at: str | None


class CustomerSummary(BaseModel):
    account_count: int
    transaction_count: int
    balances: dict[str, str]


class Customer360(BaseModel):
    customer_id: str
    name: str
    email: str
    status: CustomerStatus
    version: int
    accounts: list[AccountSummary]
    summary: CustomerSummary
    updated_at: str


class AccountList(BaseModel):
    items: list[AccountSummary]


class CustomerItem(BaseModel):
    customer_id: str
    name: str
    email: str
    status: CustomerStatus


class CustomerPage(BaseModel):
    items: list[CustomerItem]
    next_cursor: str | None


class AccountView(BaseModel):
    account_id: str
    customer_id: str
    type: AccountType
    currency: str
    balance: str
    status: Status
    status_reason: str | None  # the freeze reason while frozen, else null
    status_changed_at: str | None  # when the status last changed; null before any change
    version: int
    transaction_count: int
    opened_at: str
    updated_at: str


class AccountPage(BaseModel):
    items: list[AccountView]
    next_cursor: str | None


class Transaction(BaseModel):
    transaction_id: str
    account_id: str
    kind: TransactionKind
    amount: str
    balance_after: str
    occurred_at: str
    reference: str | None
    counterparty_account_id: str | None


class TransactionPage(BaseModel):
    items: list[Transaction]
    next_cursor: str | None


class Figures(BaseModel):
    currency: str
    deposits: str
    withdrawals: str
    transfers_in: str
    transfers_out: str
    count: int


class DailyFigures(Figures):
    date: str


class CustomerStats(BaseModel):
    days: list[DailyFigures]


class MonthlyFigures(Figures):
    month: str  # "2026-11"


class CustomerMonthlyStats(BaseModel):
    months: list[MonthlyFigures]


class HistoryEntry(BaseModel):
    version: int
    type: str  # the event type, e.g. "MoneyDeposited"
    occurred_at: str
    command_id: str
    # The event's payload fields (docs/events/), money as decimal strings named without
    # `_minor`: {"amount": "12.50", …}.
    details: dict[str, str | None]


class HistoryPage(BaseModel):
    items: list[HistoryEntry]
    next_cursor: str | None
