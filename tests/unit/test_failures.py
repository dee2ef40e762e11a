"""The projector's judgement of events that do not apply (projector/failures.py), on a fake
clock: backoff, parking after the last attempt with what follows, overdue gaps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from projector.failures import EARLIER_PARKED, FailureJudge, RetryPolicy
from projector.planner import BatchPlan
from shared.envelope import EventEnvelope


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def event(aggregate: str, version: int) -> EventEnvelope:
    return EventEnvelope(event_id=str(uuid.uuid4()), event_type="MoneyDeposited", schema_version=1,
                         aggregate_type="account", aggregate_id=aggregate, version=version,
                         occurred_at=datetime(2026, 12, 1, tzinfo=UTC), command_id="c",
                         payload={}, position=version)


def judge_with(clock: Clock, **policy) -> FailureJudge:
    return FailureJudge(RetryPolicy(**{"max_attempts": 3, "first_backoff_s": 1.0,
                                       "max_backoff_s": 4.0, **policy}), clock=clock)


def test_a_failed_event_backs_its_aggregate_off_until_its_retry_is_due():
    clock = Clock()
    judge = judge_with(clock)
    failing = event("a", 2)

    assert judge.judge(BatchPlan(failed=[(failing, "boom")]), [failing]) == []
    assert judge.backing_off() == {"a"}
    clock.now += 1.1
    assert judge.backing_off() == set()
    judge.judge(BatchPlan(failed=[(failing, "boom")]), [failing])  # second failure: 2 s
    clock.now += 1.5
    assert judge.backing_off() == {"a"}


def test_out_of_attempts_an_event_is_parked_with_every_later_event_of_its_aggregate():
    clock = Clock()
    judge = judge_with(clock)
    failing, later, other = event("a", 2), event("a", 3), event("b", 7)
    batch = [failing, later, other]

    for _ in range(2):
        assert judge.judge(BatchPlan(failed=[(failing, "boom")], held=[later],
                                     applied=[other]), batch) == []
        clock.now += 5
    parked = judge.judge(BatchPlan(failed=[(failing, "boom")], held=[later]), batch)

    assert parked == [(failing, "after 3 attempts: boom"), (later, EARLIER_PARKED)]
    assert judge.backing_off() == set()  # parked: no longer counted


def test_an_event_that_applies_clears_its_failures():
    clock = Clock()
    judge = judge_with(clock, max_attempts=2)
    flaky = event("a", 1)
    judge.judge(BatchPlan(failed=[(flaky, "once")]), [flaky])
    judge.judge(BatchPlan(applied=[flaky]), [flaky])
    clock.now += 10

    assert judge.judge(BatchPlan(failed=[(flaky, "again")]), [flaky]) == []  # a first failure


def test_a_gap_open_past_the_timeout_is_parked_with_what_follows_it():
    clock = Clock()
    judge = judge_with(clock, gap_timeout_s=60)
    waiting, after = event("a", 3), event("a", 4)  # version 2 never arrives

    assert judge.judge(BatchPlan(held=[waiting, after]), [waiting, after]) == []
    clock.now += 59
    assert judge.judge(BatchPlan(held=[waiting, after]), [waiting, after]) == []
    clock.now += 2
    parked = judge.judge(BatchPlan(held=[waiting, after]), [waiting, after])

    assert [e for e, _ in parked] == [waiting, after]
    assert all("never arrived within 60s" in why for _, why in parked)


def test_a_gap_that_closes_in_time_is_forgotten():
    clock = Clock()
    judge = judge_with(clock, gap_timeout_s=60)
    waiting = event("a", 3)
    judge.judge(BatchPlan(held=[waiting]), [waiting])
    clock.now += 30
    judge.judge(BatchPlan(applied=[event("a", 2), waiting]), [waiting])  # the gap closed
    clock.now += 100

    assert judge.judge(BatchPlan(held=[event("a", 5)]), [event("a", 5)]) == []


def test_failures_of_revoked_aggregates_are_forgotten():
    clock = Clock()
    judge = judge_with(clock)
    judge.judge(BatchPlan(failed=[(event("a", 1), "x"), (event("b", 1), "y")]),
                [event("a", 1), event("b", 1)])

    judge.keep_only({"b"})

    assert judge.backing_off() == {"b"}
