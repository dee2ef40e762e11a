"""Guarantee 4 on the read side, decided by projector/planner.py: every event is applied
exactly once, in version order per aggregate; duplicates change nothing; gaps are held back
and retried, never skipped; a poison event blocks only its own aggregate.

Events come from the real domain model, wrapped like command_service/unit_of_work.py does and
sent through the envelope JSON, so the write side's contract is what gets planned.
"""

from __future__ import annotations

import copy
import random
import uuid
from datetime import timedelta

import pytest

from projector.planner import BatchPlan, account_ids_of, customer_ids_of, plan_batch
from projector.projections import apply_to_account, apply_to_customer
from shared.envelope import EventEnvelope
from shared.upcasting import READABLE_VERSIONS
from tests.support.bank import ADA, BOB, T0, Bank


class ReadModel:
    """The three views as in-memory dicts, written back the way projector/store.py does."""

    def __init__(self) -> None:
        self.accounts: dict[str, dict] = {}
        self.customers: dict[str, dict] = {}
        self.transactions: dict[str, dict] = {}

    def plan(self, events: list[EventEnvelope]) -> BatchPlan:
        return plan_batch(
            events,
            {i: self.accounts[i] for i in account_ids_of(events) if i in self.accounts},
            {i: self.customers[i] for i in customer_ids_of(events) if i in self.customers},
        )

    def write(self, plan: BatchPlan) -> None:
        for doc in plan.transactions:
            self.transactions[doc["_id"]] = doc
        self.customers.update(plan.customers)
        self.accounts.update(plan.accounts)

    def project(self, events: list[EventEnvelope]) -> BatchPlan:
        plan = self.plan(events)
        self.write(plan)
        return plan

    def state(self) -> tuple:
        return copy.deepcopy((self.accounts, self.customers, self.transactions))


def hand_made(event_type: str, aggregate_id: str, version: int, payload: dict,
              aggregate_type: str = "account") -> EventEnvelope:
    return EventEnvelope(event_id=str(uuid.uuid4()), event_type=event_type,
                         schema_version=READABLE_VERSIONS.get(event_type, 1),
                         aggregate_type=aggregate_type, aggregate_id=aggregate_id,
                         version=version, occurred_at=T0 + timedelta(hours=1),
                         command_id="cmd", payload=payload)


def ids(events) -> list[tuple[str, int]]:
    return [(e.aggregate_id, e.version) for e in events]


def entry(customer: dict, account_id: str) -> dict:
    [found] = [a for a in customer["accounts"] if a["account_id"] == account_id]
    return found


# -- applying in order -----------------------------------------------------------------------

def test_a_batch_is_applied_in_order_and_every_view_reflects_it():
    bank = Bank()
    bank.register()
    account = bank.open("acc-1", initial=1_000)
    bank.deposit(account, 500)
    bank.withdraw(account, 200)
    read = ReadModel()
    plan = read.project(bank.log)
    assert plan.applied == bank.log
    assert plan.duplicates == plan.held == plan.failed == []
    assert set(plan.accounts) == {"acc-1"} and set(plan.customers) == {ADA}
    view = read.accounts["acc-1"]
    assert (view["version"], view["balance_minor"], view["transaction_count"]) == (3, 1_300, 3)
    customer = read.customers[ADA]
    assert (customer["version"], customer["name"]) == (1, "Ada Lovelace")
    assert entry(customer, "acc-1")["balance_minor"] == 1_300
    assert customer["summary"]["balances_minor"] == {"USD": 1_300}
    assert [t["account_version"] for t in plan.transactions] == [1, 2, 3]
    assert [t["kind"] for t in plan.transactions] == ["deposit", "deposit", "withdrawal"]


def test_an_initial_deposit_is_planned_as_a_deposit_transaction():
    bank = Bank()
    bank.register()
    bank.open("acc-1", initial=2_500)
    bank.open("acc-2")  # no money, no transaction
    plan = ReadModel().project(bank.log)
    [tx] = plan.transactions
    assert (tx["_id"], tx["kind"], tx["amount_minor"], tx["balance_after_minor"]) == \
        ("tx-open-acc-1", "deposit", 2_500, 2_500)


def test_a_transfer_is_planned_as_transfer_out_and_transfer_in_with_counterparties():
    bank = Bank()
    bank.register()
    bank.register(BOB, "Bob", "bob@example.com")
    a, b = bank.open("acc-a", initial=1_000), bank.open("acc-b", customer_id=BOB)
    bank.transfer(a, b, 400)
    read = ReadModel()
    plan = read.project(bank.log)
    moved = [(t["kind"], t["account_id"], t["counterparty_account_id"], t["amount_minor"])
             for t in plan.transactions if t["transfer_id"]]
    assert moved == [("transfer_out", "acc-a", "acc-b", 400),
                     ("transfer_in", "acc-b", "acc-a", 400)]
    assert read.customers[ADA]["summary"]["balances_minor"] == {"USD": 600}
    assert read.customers[BOB]["summary"]["balances_minor"] == {"USD": 400}


def test_the_summary_counts_every_account_and_transaction_including_closed_and_empty_ones():
    bank = Bank()
    bank.register()
    a = bank.open("acc-a", initial=10_000)
    b = bank.open("acc-b")
    bank.open("acc-eur", currency="EUR")
    inr = bank.open("acc-inr", currency="INR", initial=99)
    bank.transfer(a, b, 2_500)
    bank.withdraw(inr, 99)
    bank.close(inr)
    bank.freeze(b)
    bank.deposit(b, 1)
    read = ReadModel()
    read.project(bank.log)
    summary = read.customers[ADA]["summary"]
    assert summary["account_count"] == 4
    assert summary["balances_minor"] == {"EUR": 0, "INR": 0, "USD": 10_001}
    # openings of a and inr, two transfer legs, the inr withdrawal, the deposit into b
    assert summary["transaction_count"] == 6 == len(read.transactions)
    assert entry(read.customers[ADA], "acc-inr")["status"] == "closed"
    assert entry(read.customers[ADA], "acc-b")["status"] == "frozen"


# -- duplicates and idempotence --------------------------------------------------------------

def test_a_redelivered_event_is_a_duplicate_and_changes_nothing():
    bank = Bank()
    bank.register()
    account = bank.open("acc-1", initial=100)
    deposited = bank.deposit(account, 50)
    read = ReadModel()
    read.project(bank.log)
    before = read.state()
    plan = read.project([deposited])
    assert plan.duplicates == [deposited]
    assert plan.applied == plan.held == plan.failed == []
    assert plan.accounts == plan.customers == {} and plan.transactions == []
    assert read.state() == before


def test_an_event_older_than_the_view_is_a_duplicate():
    bank = Bank()
    bank.register()
    account = bank.open("acc-1", initial=100)
    bank.deposit(account, 50)
    bank.withdraw(account, 10)
    read = ReadModel()
    read.project(bank.log)
    plan = read.project(bank.of("acc-1")[:2])
    assert ids(plan.duplicates) == [("acc-1", 1), ("acc-1", 2)]
    assert read.accounts["acc-1"]["balance_minor"] == 140


def test_re_planning_the_same_batch_yields_only_duplicates():
    bank = Bank()
    bank.register()
    bank.register(BOB, "Bob", "bob@example.com")
    a, b = bank.open("acc-a", initial=1_000), bank.open("acc-b", customer_id=BOB)
    bank.transfer(a, b, 1)
    bank.freeze(a)
    read = ReadModel()
    read.project(bank.log)
    before = read.state()
    plan = read.plan(bank.log)
    assert sorted(ids(plan.duplicates)) == sorted(ids(bank.log))
    assert plan.applied == plan.held == plan.failed == []
    assert plan.accounts == plan.customers == {} and plan.transactions == []
    read.write(plan)
    assert read.state() == before


def test_a_redelivery_inside_one_batch_is_applied_once():
    bank = Bank()
    bank.register()
    account = bank.open("acc-1", initial=100)
    deposited = bank.deposit(account, 50)
    read = ReadModel()
    plan = read.project([*bank.log, deposited, bank.log[0]])
    assert ids(plan.applied) == [(ADA, 1), ("acc-1", 1), ("acc-1", 2)]
    assert read.accounts["acc-1"]["balance_minor"] == 150
    assert read.customers[ADA]["summary"]["transaction_count"] == 2


def test_a_customer_entry_already_written_is_not_applied_twice():
    # A crash after the dependants (customer view) were written but before the primary
    # (account view): the redelivered event is applied to the account view only.
    bank = Bank()
    bank.register()
    account = bank.open("acc-1", initial=100)
    read = ReadModel()
    read.project(bank.log)
    deposited = bank.deposit(account, 50)
    crashed = read.plan([deposited])
    read.customers.update(crashed.customers)  # the customer write made it, the account's did not
    for doc in crashed.transactions:
        read.transactions[doc["_id"]] = doc
    assert read.accounts["acc-1"]["version"] == 1 and entry(read.customers[ADA], "acc-1")[
        "version"] == 2

    plan = read.project([deposited])
    assert plan.applied == [deposited]
    assert read.accounts["acc-1"]["version"] == 2
    assert read.accounts["acc-1"]["balance_minor"] == 150
    customer = read.customers[ADA]
    assert entry(customer, "acc-1")["transaction_count"] == 2  # not 3
    assert customer["summary"] == {"account_count": 1, "transaction_count": 2,
                                   "balances_minor": {"USD": 150}}
    assert len(read.transactions) == 2  # same transaction id, written again in place


def test_a_customer_view_ahead_of_the_event_is_not_rolled_back():
    bank = Bank()
    bank.register()
    account = bank.open("acc-1", initial=100)
    read = ReadModel()
    read.project(bank.log)
    first = bank.deposit(account, 50)
    second = bank.withdraw(account, 120)
    ahead = read.plan([first, second])
    read.customers.update(ahead.customers)  # customer entry at v3; account view still at v1
    read.project([first])
    assert entry(read.customers[ADA], "acc-1")["version"] == 3
    assert entry(read.customers[ADA], "acc-1")["balance_minor"] == 30
    assert read.accounts["acc-1"]["balance_minor"] == 150


# -- order and gaps --------------------------------------------------------------------------

def test_events_out_of_order_within_a_batch_are_sorted_and_all_applied():
    bank = Bank()
    bank.register()
    account = bank.open("acc-1", initial=100)
    bank.deposit(account, 1)
    bank.deposit(account, 2)
    registered, v1, v2, v3 = bank.log
    read = ReadModel()
    plan = read.project([v3, registered, v2, v1])
    assert ids(plan.applied) == [("acc-1", 1), ("acc-1", 2), ("acc-1", 3), (ADA, 1)]
    assert plan.held == plan.duplicates == []
    assert read.accounts["acc-1"]["balance_minor"] == 103
    assert [t["account_version"] for t in plan.transactions] == [1, 2, 3]


def test_a_gap_is_held_with_every_later_version_while_other_aggregates_apply():
    bank = Bank()
    bank.register()
    one = bank.open("acc-1", initial=100)
    two = bank.open("acc-2")
    read = ReadModel()
    read.project(bank.log)
    v2 = bank.deposit(one, 1)
    v3 = bank.deposit(one, 2)
    v4 = bank.withdraw(one, 3)
    other = bank.deposit(two, 7)
    before = copy.deepcopy(read.accounts["acc-1"])

    plan = read.project([v3, other, v4])  # v2 is late
    assert plan.held == [v3, v4]
    assert plan.applied == [other]
    assert plan.failed == plan.duplicates == []
    assert "acc-1" not in plan.accounts
    assert read.accounts["acc-1"] == before
    assert read.accounts["acc-2"]["balance_minor"] == 7
    assert entry(read.customers[ADA], "acc-1")["version"] == 1

    retried = read.project([*plan.held, v2])  # the consumer retries what it held
    assert retried.applied == [v2, v3, v4]
    assert read.accounts["acc-1"]["balance_minor"] == 100
    assert entry(read.customers[ADA], "acc-1")["version"] == 4


def test_an_account_whose_opening_is_missing_is_held_not_failed():
    bank = Bank()
    bank.register()
    account = bank.open("acc-1", initial=100)
    deposited = bank.deposit(account, 1)
    read = ReadModel()
    read.project(bank.log[:1])
    plan = read.project([deposited])
    assert plan.held == [deposited] and plan.failed == []
    assert "acc-1" not in read.accounts


def test_account_events_before_the_customer_registration_still_apply():
    bank = Bank()
    registered = bank.register()
    account = bank.open("acc-1", initial=500)
    bank.deposit(account, 250)
    read = ReadModel()

    early = read.project(bank.log[1:])
    assert len(early.applied) == 2 and early.held == []
    customer = read.customers[ADA]
    assert customer["version"] == 0
    assert "name" not in customer
    assert customer["summary"]["balances_minor"] == {"USD": 750}

    late = read.project([registered])
    assert late.applied == [registered]
    customer = read.customers[ADA]
    assert (customer["version"], customer["name"], customer["email"]) == \
        (1, "Ada Lovelace", "Ada@Example.com")  # as registered: case kept
    assert entry(customer, "acc-1")["balance_minor"] == 750
    assert customer["summary"]["transaction_count"] == 2


def test_the_registration_after_its_accounts_in_the_same_batch_keeps_the_accounts():
    bank = Bank()
    registered = bank.register()
    bank.open("acc-1", initial=500)
    read = ReadModel()
    plan = read.project([*bank.log[1:], registered])
    assert len(plan.applied) == 2
    customer = read.customers[ADA]
    assert customer["version"] == 1 and customer["name"] == "Ada Lovelace"
    assert [a["account_id"] for a in customer["accounts"]] == ["acc-1"]


# -- poison events ---------------------------------------------------------------------------

def test_an_unknown_event_fails_and_blocks_only_its_own_aggregate():
    bank = Bank()
    bank.register()
    one = bank.open("acc-1", initial=100)
    two = bank.open("acc-2")
    read = ReadModel()
    read.project(bank.log)
    before = copy.deepcopy(read.accounts["acc-1"])
    poison = hand_made("AccountRenamed", "acc-1", 2,
                       {"account_id": "acc-1", "customer_id": ADA, "currency": "USD"})
    one.version = 2  # the write side's next event for acc-1 (v3) follows the poison one (v2)
    one.deposit(amount_minor=5, transaction_id="tx-after", reference=None, now=T0)
    after = bank._publish(one)[0]
    fine = bank.deposit(two, 9)

    plan = read.project([poison, after, fine])
    [(failed, reason)] = plan.failed
    assert failed is poison
    assert "AccountRenamed" in reason
    assert plan.held == [after]
    assert plan.applied == [fine]
    assert read.accounts["acc-1"] == before
    assert "tx-after" not in read.transactions
    assert read.accounts["acc-2"]["balance_minor"] == 9
    assert entry(read.customers[ADA], "acc-1")["version"] == 1


def test_an_event_with_a_broken_payload_fails_without_touching_any_view():
    bank = Bank()
    bank.register()
    account = bank.open("acc-1", initial=100)
    read = ReadModel()
    read.project(bank.log)
    before = read.state()
    good = bank.deposit(account, 5)
    broken_payload = {k: v for k, v in good.payload.items() if k != "transaction_id"}
    broken = hand_made("MoneyDeposited", "acc-1", 2, broken_payload)
    plan = read.project([broken])
    [(failed, reason)] = plan.failed
    assert failed is broken and reason.startswith("KeyError")
    assert plan.accounts == plan.customers == {} and plan.transactions == []
    assert read.state() == before


def test_an_event_of_an_unknown_aggregate_type_fails_alone():
    bank = Bank()
    bank.register()
    loan = hand_made("LoanGranted", "loan-1", 1, {"customer_id": ADA}, aggregate_type="loan")
    plan = ReadModel().project([loan, *bank.log])
    assert [e for e, _ in plan.failed] == [loan]
    assert plan.applied == bank.log


def test_planning_never_mutates_the_documents_it_was_given():
    bank = Bank()
    bank.register()
    account = bank.open("acc-1", initial=100)
    read = ReadModel()
    read.project(bank.log)
    accounts, customers = read.accounts, read.customers
    before = copy.deepcopy((accounts, customers))
    bank.deposit(account, 1)
    bank.open("acc-2", initial=3)
    plan_batch(bank.log[-2:], accounts, customers)
    assert (accounts, customers) == before


# -- helpers the consumer uses to load documents ---------------------------------------------

def test_the_ids_to_load_cover_every_account_and_customer_a_batch_touches():
    bank = Bank()
    bank.register()
    bank.register(BOB, "Bob", "bob@example.com")
    a, b = bank.open("acc-a", initial=10), bank.open("acc-b", customer_id=BOB)
    bank.transfer(a, b, 1)
    loan = hand_made("LoanGranted", "loan-1", 1, {"customer_id": "x"}, aggregate_type="loan")
    events = [*bank.log, loan]
    assert account_ids_of(events) == {"acc-a", "acc-b"}
    assert customer_ids_of(events) == {ADA, BOB}
    assert customer_ids_of(bank.of("acc-b")) == {BOB}  # from the account event's payload
    assert account_ids_of([]) == customer_ids_of([]) == set()


# -- convergence -----------------------------------------------------------------------------

def _story() -> Bank:
    bank = Bank()
    bank.register()
    bank.register(BOB, "Bob", "bob@example.com")
    a = bank.open("acc-a", initial=50_000)
    b = bank.open("acc-b", customer_id=BOB, initial=100)
    e = bank.open("acc-e", currency="EUR")
    for i in range(1, 8):
        bank.transfer(a, b, 100 * i)
        bank.deposit(e, i)
    bank.withdraw(b, 50)
    bank.transfer(b, a, 1_000)
    bank.freeze(a)
    bank.deposit(a, 1)
    bank.withdraw(e, 28)
    bank.close(e)
    return bank


def _expected(bank: Bank) -> tuple[dict, dict]:
    accounts, customers = {}, {}
    for event in bank.log:
        if event.aggregate_type == "account":
            accounts[event.aggregate_id] = apply_to_account(accounts.get(event.aggregate_id), event)
        cid = event.aggregate_id if event.aggregate_type == "customer" else event.payload[
            "customer_id"]
        customers[cid] = apply_to_customer(customers.get(cid), event)
    return accounts, customers


def _comparable(customer: dict) -> dict:
    return {**customer, "accounts": sorted(customer["accounts"], key=lambda a: a["account_id"])}


@pytest.mark.parametrize("seed", range(12))
def test_any_delivery_order_with_redeliveries_converges_to_the_same_views(seed):
    bank = _story()
    rng = random.Random(seed)
    delivered = bank.log + rng.sample(bank.log, 15)  # at-least-once: some arrive twice
    rng.shuffle(delivered)
    read, held = ReadModel(), []
    while delivered:
        size = rng.randint(1, 12)
        batch, delivered = delivered[:size], delivered[size:]
        plan = read.project(held + batch)
        assert not plan.failed
        held = plan.held
    for _ in range(len(bank.log)):  # what is still held is retried until nothing is left
        if not held:
            break
        held = read.project(held).held
    assert held == []

    accounts, customers = _expected(bank)
    assert read.accounts == accounts
    assert {k: _comparable(v) for k, v in read.customers.items()} == \
        {k: _comparable(v) for k, v in customers.items()}
    assert len(read.transactions) == sum(a["transaction_count"] for a in accounts.values())
    assert read.customers[ADA]["summary"]["balances_minor"] == {"EUR": 0, "USD": 48_201}
    assert read.customers[BOB]["summary"]["balances_minor"] == {"USD": 1_850}
