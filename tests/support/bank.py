"""A bank driven through the pure domain model, as the command handlers drive it, keeping the
log of what it published: the events the projection and planner unit tests feed the read side
(each one through its JSON form, as it travels over the wire)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from command_service.domain.model import Account, AccountType, Customer
from command_service.outbox_envelope import envelope_of
from shared.envelope import EventEnvelope

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ADA = "0b7e6c1a-0000-4000-8000-00000000000a"
BOB = "0b7e6c1a-0000-4000-8000-00000000000b"


class Bank:
    """Drives the domain model like the command handlers do and keeps the published log."""

    def __init__(self) -> None:
        self.clock = T0
        self.log: list[EventEnvelope] = []
        self.customers: dict[str, Customer] = {}

    def _now(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def _publish(self, *aggregates) -> list[EventEnvelope]:
        command_id = str(uuid.uuid4())
        published = []
        for aggregate in aggregates:
            for event in aggregate.pending_events:
                envelope = envelope_of(event, command_id)  # as the unit of work
                envelope = replace(envelope, position=len(self.log) + len(published) + 1)
                published.append(EventEnvelope.from_json(envelope.to_json()))  # over the wire
            aggregate.pending_events.clear()
        self.log.extend(published)
        return published

    def register(self, customer_id=ADA, name="Ada Lovelace",
                 email="Ada@Example.com") -> EventEnvelope:
        customer = Customer.register(customer_id=customer_id, name=name, email=email,
                                     now=self._now())
        self.customers[customer_id] = customer
        return self._publish(customer)[0]

    def open(self, account_id, customer_id=ADA, currency="USD", initial=0,
             account_type=AccountType.CHECKING) -> Account:
        account = Account.open(account_id=account_id, customer_id=customer_id,
                               account_type=account_type, currency=currency,
                               initial_deposit_minor=initial,
                               transaction_id=f"tx-open-{account_id}", now=self._now())
        self._publish(account)
        return account

    def deposit(self, account: Account, amount: int, reference=None) -> EventEnvelope:
        account.deposit(amount_minor=amount, transaction_id=str(uuid.uuid4()),
                        reference=reference, now=self._now())
        return self._publish(account)[0]

    def withdraw(self, account: Account, amount: int, reference=None) -> EventEnvelope:
        account.withdraw(amount_minor=amount, transaction_id=str(uuid.uuid4()),
                         reference=reference, now=self._now())
        return self._publish(account)[0]

    def transfer(self, sender: Account, receiver: Account, amount: int, reference=None):
        now, transfer_id = self._now(), str(uuid.uuid4())
        sender.send_transfer(to=receiver, amount_minor=amount, transfer_id=transfer_id,
                             transaction_id=str(uuid.uuid4()), reference=reference, now=now)
        receiver.receive_transfer(sender=sender, amount_minor=amount, transfer_id=transfer_id,
                                  transaction_id=str(uuid.uuid4()), reference=reference, now=now)
        return self._publish(sender, receiver)

    def freeze(self, account: Account, reason="audit") -> EventEnvelope:
        account.freeze(reason=reason, now=self._now())
        return self._publish(account)[0]

    def unfreeze(self, account: Account) -> EventEnvelope:
        account.unfreeze(now=self._now())
        return self._publish(account)[0]

    def close(self, account: Account) -> EventEnvelope:
        account.close(now=self._now())
        return self._publish(account)[0]

    def change_customer(self, customer_id=ADA, name=None, email=None) -> list[EventEnvelope]:
        customer = self.customers[customer_id]
        customer.change(name=name, email=email, now=self._now())
        return self._publish(customer)

    def close_customer(self, customer_id=ADA, reason=None,
                       open_accounts: int = 0) -> EventEnvelope:
        customer = self.customers[customer_id]
        customer.close(reason=reason, open_accounts=open_accounts, now=self._now())
        return self._publish(customer)[0]

    def of(self, aggregate_id: str) -> list[EventEnvelope]:
        return [e for e in self.log if e.aggregate_id == aggregate_id]
