"""A small bank's whole history, every event type in it, with deterministic ids: the same
scenario driven through the domain of any release gives the same events, ids included, in
that release's shapes. A release that adds steps adds them at the end, so what an earlier
release made of the scenario is a prefix of what a later one makes. tests/fixtures/events/
keeps what earlier releases made of it, frozen, so the current release's reading of old
events can be compared with its own events."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from command_service.domain.model import AccountType
from tests.support.bank import BOB, Bank

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
# What the release before schema versions existed (commit babdda3) published for `drive`.
BEFORE_SCHEMA_VERSIONS = FIXTURES / "before-schema-versions.jsonl"
# Every frozen history: one file per release that changed an event's shape, frozen before it.
FROZEN_HISTORIES = sorted(FIXTURES.glob("*.jsonl"))

ADA_USD = "5d1b5a8e-0000-4000-8000-0000000000a1"
ADA_EUR = "5d1b5a8e-0000-4000-8000-0000000000a2"
BOB_USD = "5d1b5a8e-0000-4000-8000-0000000000b1"
CY = "0b7e6c1a-0000-4000-8000-00000000000c"


@contextlib.contextmanager
def deterministic_ids() -> Iterator[None]:
    """uuid4() returns 00000000-…-0001, -0002, … (as version-4 UUIDs) while inside."""
    counter = iter(range(1, 1_000_000))
    with mock.patch.object(uuid, "uuid4", lambda: uuid.UUID(int=next(counter), version=4)):
        yield


def drive() -> Bank:
    """Three customers, three accounts, every kind of money movement, every status change,
    and every change of a customer."""
    with deterministic_ids():
        bank = Bank()
        bank.register()
        bank.register(customer_id=BOB, name="Bob Babbage", email="bob@example.com")
        ada_usd = bank.open(ADA_USD, currency="USD", initial=10_000)
        ada_eur = bank.open(ADA_EUR, currency="EUR", account_type=AccountType.SAVINGS)
        bob_usd = bank.open(BOB_USD, customer_id=BOB, currency="USD", initial=2_500)
        bank.deposit(ada_eur, 40_000, reference="salary")
        bank.deposit(ada_usd, 1_234)
        bank.withdraw(ada_usd, 999, reference="cash")
        bank.transfer(ada_usd, bob_usd, 5_000, reference="rent")
        bank.transfer(bob_usd, ada_usd, 1_000)
        bank.freeze(bob_usd, reason="suspicious activity reported by the customer")
        bank.unfreeze(bob_usd)
        bank.withdraw(ada_eur, 40_000)
        bank.close(ada_eur)
        # Steps are only ever added at the end, so a frozen history stays a prefix of the log.
        # Added with customer changes and closure:
        bank.change_customer(BOB, name="Bob A. Babbage")
        bank.change_customer(name="Ada King", email="ada.king@example.com")
        bank.register(customer_id=CY, name="Cy Leaving", email="cy@example.com")
        bank.close_customer(CY, reason="moved abroad")
    return bank


def frozen_messages(path: Path = BEFORE_SCHEMA_VERSIONS) -> list[str]:
    """The Kafka message values an earlier release published, one per line, as they were."""
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line]


def freeze(path: Path) -> None:
    """Write what this release publishes for `drive`: run it with the code of the release
    being frozen, before its events change (tests/fixtures/events/README.md)."""
    path.write_text("".join(json.dumps(json.loads(e.to_json()), separators=(",", ":"),
                                       sort_keys=True) + "\n" for e in drive().log))
