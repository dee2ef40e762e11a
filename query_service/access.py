"""Who may read which view: the query side's access rules in one place, as the command side
has command_service/access.py. A token that acts for one customer (`customer_id` claim) reads
that customer's views and accounts only; any other token with `accounts:read` reads all.
Every router asks here, so a new query cannot forget the confinement."""

from __future__ import annotations

from shared.auth import Principal, forbidden


def may_see(reader: Principal, customer_id: str | None) -> bool:
    """Whether `reader` may see what belongs to `customer_id` (without refusing)."""
    return reader.may_see_customer(customer_id)


def ensure_may_see_customer(reader: Principal, customer_id: str) -> None:
    if not may_see(reader, customer_id):
        raise forbidden(f"customer {customer_id} is not the customer this token acts for")


def ensure_may_see_account(reader: Principal, account: dict) -> None:
    """`account` is the account's view; its owner decides."""
    if not may_see(reader, account["customer_id"]):
        raise forbidden(f"account {account['_id']} belongs to another customer")


def ensure_may_list_every_account(reader: Principal) -> None:
    """Bank-wide lists are the bank's: a customer's token lists its own accounts only."""
    if reader.restricted:
        raise forbidden("a customer's token cannot list every account; list this customer's "
                        "accounts at /v1/customers/{customer_id}/accounts")
