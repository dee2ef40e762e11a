"""Request and response bodies of the command service (docs/api.md), validated strictly: unknown
fields, wrong JSON types and malformed values are 422 before any handler runs."""

from __future__ import annotations

import sys
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from shared.money import Currency, parse_amount

# Money arrives as a decimal string and is held as integer minor units from here on.
Money = Annotated[
    int,
    BeforeValidator(parse_amount),
    # Exactly what parse_amount accepts: 0.01 up to 1000000000.00, at most two decimals.
    WithJsonSchema({"type": "string",
                    "pattern": r"^(?:[1-9][0-9]{0,8}(?:\.[0-9]{1,2})?|0\.(?:0[1-9]|[1-9][0-9]?)"
                               r"|1000000000(?:\.0{1,2})?)$",
                    "description": "decimal string, > 0, at most 2 decimals and 1000000000.00",
                    "examples": ["12.50"]}),
]
MoneyOut = Annotated[str, Field(examples=["12.50"], pattern=r"^\d+\.\d{2}$")]

# Names and reasons are stripped, so they need one character that is not whitespace; the
# schema says so with Python's own set of whitespace characters.
_WHITESPACE = "".join(f"\\u{c:04x}" for c in range(sys.maxunicode + 1) if chr(c).isspace())
NOT_BLANK = f"[^{_WHITESPACE}]"
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
                 Field(json_schema_extra={"pattern": NOT_BLANK})]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
                   Field(json_schema_extra={"pattern": NOT_BLANK})]
# An address at a special-use domain (.test, .invalid, .localhost, ...) is refused as well as a
# malformed one; the pattern documents that on top of the `email` format.
_SPECIAL_USE = "|".join("".join(f"[{ch.upper()}{ch}]" for ch in name) for name in (
    "arpa", "invalid", "local", "localhost", "onion", "test"))
EMAIL_PATTERN = rf"^[^@]+@[^@]+\.(?!(?:{_SPECIAL_USE})$)[^@.]+$"
Email = Annotated[EmailStr, StringConstraints(max_length=320),
                  Field(json_schema_extra={"pattern": EMAIL_PATTERN})]
Reference = Annotated[str, StringConstraints(max_length=140)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class RegisterCustomerIn(Strict):
    name: Name
    email: Email
    customer_id: UUID | None = None


def _changes_at_least_one(schema: dict) -> None:
    """Each field may be left out but is never null (so no `default: null`, which would
    contradict its type), and at least one is given."""
    schema["minProperties"] = 1
    for field in schema["properties"].values():
        field.pop("default", None)


class ChangeCustomerIn(Strict):
    model_config = ConfigDict(json_schema_extra=_changes_at_least_one)
    name: Name = None
    email: Email = None

    @model_validator(mode="after")
    def _changes_something(self) -> ChangeCustomerIn:
        if not self.model_fields_set:
            raise ValueError("name a field to change: name, email or both")
        return self


class CloseCustomerIn(Strict):
    # Optional; a blank reason is no reason.
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None


class OpenAccountIn(Strict):
    customer_id: UUID
    type: Literal["checking", "savings"]
    currency: Currency
    initial_deposit: Money | None = None
    account_id: UUID | None = None


class MoneyMovementIn(Strict):
    amount: Money
    reference: Reference | None = None


class TransferIn(Strict):
    from_account_id: UUID
    to_account_id: UUID
    amount: Money
    reference: Reference | None = None

    @field_validator("to_account_id")
    @classmethod
    def _two_accounts(cls, to_account_id: UUID, info: ValidationInfo) -> UUID:
        if to_account_id == info.data.get("from_account_id"):
            raise ValueError("must be a different account than from_account_id")
        return to_account_id


class FreezeIn(Strict):
    reason: Reason


class EmptyIn(Strict):
    pass


class CustomerCreated(BaseModel):
    customer_id: UUID
    version: int
    command_id: UUID


class CustomerChangedOut(BaseModel):
    customer_id: UUID
    version: int
    command_id: UUID


class CustomerClosedOut(BaseModel):
    customer_id: UUID
    status: Literal["closed"]
    version: int
    command_id: UUID


class AccountOpenedOut(BaseModel):
    account_id: UUID
    customer_id: UUID
    balance: MoneyOut
    version: int
    command_id: UUID


class MoneyMovedOut(BaseModel):
    account_id: UUID
    transaction_id: UUID
    balance: MoneyOut
    version: int
    command_id: UUID


class TransferLeg(BaseModel):
    account_id: UUID
    balance: MoneyOut
    version: int


class TransferOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    transfer_id: UUID
    from_: TransferLeg = Field(alias="from")
    to: TransferLeg
    command_id: UUID


class AccountStatusOut(BaseModel):
    account_id: UUID
    status: Literal["active", "frozen", "closed"]
    version: int
    command_id: UUID


class CommandStatusOut(BaseModel):
    command_id: UUID
    type: str
    status: Literal["completed", "failed"]
    created_at: str
    completed_at: str | None
    subject: str | None = Field(
        description="who sent it: the `sub` of its bearer token (`anonymous` with "
                    "authentication off); null if recorded before subjects were")
    error: dict | None = Field(None, description="`{\"code\", \"message\"}` of a failed "
                                                "command; `internal_error` for a bug")
    customer_id: UUID | None = Field(
        description="the customer it acts for: the one it names, else the owner of the "
                    "account it acts on; null if none, or if recorded before the command log")
    aggregate_ids: list[str] = Field(
        description="the aggregates a completed command changed; the customer and account "
                    "ids a failed command names")
    payload: dict = Field(
        description="the command's input as accepted, named as in the request body, money as "
                    "decimal strings; {} if recorded before the command log",
        examples=[{"account_id": "5b0f8f5e-6c7a-4b7e-9d1e-2f3a4b5c6d7e", "amount": "12.50",
                   "reference": None}])


class CommandLogPage(BaseModel):
    items: list[CommandStatusOut]
    next_cursor: str | None = Field(description="opaque; pass as `cursor` for the next page, "
                                                 "null on the last")
