"""The projector's knowledge of which aggregates have parked events (guarantee: an aggregate's
later events never overtake a parked one), against the real read store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pymongo import monitoring

from projector.dead_letters import DeadLetters, ParkedAggregates
from shared.envelope import EventEnvelope


def event(aggregate_id: str, version: int = 2) -> EventEnvelope:
    return EventEnvelope(event_id=str(uuid.uuid4()), event_type="MoneyDeposited", schema_version=1,
                         aggregate_type="account", aggregate_id=aggregate_id, version=version,
                         occurred_at=datetime.now(UTC), command_id=str(uuid.uuid4()),
                         payload={"amount_minor": 1})


class _Finds(monitoring.CommandListener):
    def __init__(self) -> None:
        self.count = 0

    def started(self, e) -> None:
        if e.command_name == "find" and e.command.get("find") == "dead_letters":
            self.count += 1

    def succeeded(self, e) -> None:
        pass

    def failed(self, e) -> None:
        pass


FINDS = _Finds()
monitoring.register(FINDS)


async def test_batches_of_unparked_aggregates_cost_no_query_after_the_first(read_db):
    parked = ParkedAggregates(DeadLetters(read_db))
    first = FINDS.count
    assert await parked.among({"a", "b"}) == set()
    before = FINDS.count
    assert before == first + 1  # the first batch reads what is parked
    for _ in range(5):
        assert await parked.among({"a", "b", "c"}) == set()
    assert FINDS.count == before


async def test_its_own_parks_count_at_once_and_a_retried_aggregate_is_let_go(read_db):
    dead_letters = DeadLetters(read_db)
    parked = ParkedAggregates(dead_letters)
    await parked.among(set())  # reads what is parked: nothing
    await dead_letters.park([(event("x"), "boom", 0, 1)])
    parked.add({"x"})
    assert await parked.among({"x", "y"}) == {"x"}

    await dead_letters.discard(aggregate_id="x")  # the operator, from another process
    assert await parked.among({"x"}) == set()  # confirmed with the store before parking


@pytest.mark.every_pair("partition assignment")
async def test_after_an_assignment_it_reads_what_the_previous_owner_parked(read_db):
    parked = ParkedAggregates(DeadLetters(read_db))
    await parked.among(set())
    await DeadLetters(read_db).park([(event("z"), "boom", 3, 7)])  # another projector

    parked.forget()  # on_partitions_assigned
    assert await parked.among({"z", "w"}) == {"z"}
