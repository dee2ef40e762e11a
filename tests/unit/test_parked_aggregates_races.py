"""ParkedAggregates when a rebalance (`forget`, from aiokafka's coordinator task) lands while
it waits on the store: it must neither crash nor keep a stale answer. The store here is an
in-memory stand-in that lets the test act in the middle of a read."""

from __future__ import annotations

from collections.abc import Callable

from projector.dead_letters import ParkedAggregates


class StoreWithAHook:
    def __init__(self) -> None:
        self.parked: set[str] = set()
        self.during_next_read: Callable[[], None] | None = None

    async def parked_aggregates(self, among: set[str] | None = None) -> set[str]:
        result = set(self.parked) if among is None else self.parked & among
        hook, self.during_next_read = self.during_next_read, None
        if hook:  # what happens while the query is on the wire
            hook()
        return result


async def test_a_rebalance_during_the_first_read_makes_it_read_again():
    store = StoreWithAHook()
    parked = ParkedAggregates(store)

    def previous_owner_parks_then_we_are_assigned() -> None:
        store.parked.add("z")
        parked.forget()

    store.during_next_read = previous_owner_parks_then_we_are_assigned
    assert await parked.among({"z"}) == {"z"}


async def test_a_rebalance_during_the_confirming_read_does_not_crash():
    store = StoreWithAHook()
    store.parked.add("x")
    parked = ParkedAggregates(store)
    assert await parked.among({"x"}) == {"x"}

    store.parked.discard("x")  # retried by an operator
    store.during_next_read = parked.forget
    assert await parked.among({"x"}) == set()
    assert await parked.among({"x"}) == set()  # read afresh after the forget
