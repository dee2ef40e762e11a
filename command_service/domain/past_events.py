"""Payload shapes this service published in earlier releases, frozen.

When an event's payload changes, its previous shape moves here, under its type and the schema
version it had, and is never edited again. Nothing writes these any more: the published
contract's older schema versions are generated from them (docs/events/), for consumers that
still read the topic's history, and the upcasters in shared/upcasting.py turn them into the
current shape for this service's own read side.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class AccountOpenedV1:
    """An account was opened, with its initial deposit when one was made."""

    account_id: str
    customer_id: str
    currency: str
    account_type: str
    initial_deposit_minor: int
    balance_after_minor: int
    transaction_id: str | None


# (event type, schema version) -> its payload's shape, for every version no longer written.
PAST_PAYLOADS: dict[tuple[str, int], type] = {
    ("AccountOpened", 1): AccountOpenedV1,
}
