"""The relay's judgement of broker refusals, with a fake clock: which errors judge the record,
and how long a refused aggregate is held back."""

from __future__ import annotations

import pytest
from aiokafka.errors import (
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    RecordListTooLargeError,
)

from command_service.outbox.refusals import RefusedKeys, is_record_refusal, needs_lone_resend


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("error", [MessageSizeTooLargeError(), RecordListTooLargeError()])
def test_an_error_about_the_record_itself_is_a_refusal(error):
    assert is_record_refusal(error)
    assert needs_lone_resend(error)


@pytest.mark.parametrize("error", [KafkaTimeoutError(), NotLeaderForPartitionError(),
                                   ConnectionError(), None, "ok"])
def test_an_outage_or_a_success_is_not_a_refusal(error):
    assert not is_record_refusal(error)
    assert not needs_lone_resend(error)


def test_out_of_sequence_after_a_refusal_is_resent_alone_but_blames_no_one():
    assert needs_lone_resend(OutOfOrderSequenceNumber())
    assert not is_record_refusal(OutOfOrderSequenceNumber())


def test_a_refused_key_waits_out_a_backoff_that_doubles_up_to_its_cap():
    clock = Clock()
    refused = RefusedKeys(first_backoff_s=1.0, max_backoff_s=4.0, clock=clock)

    assert [refused.refuse("a") for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]
    assert refused.waiting() == ["a"] and "a" in refused and len(refused) == 1
    clock.now += 3.9
    assert refused.waiting() == ["a"]
    clock.now += 0.2
    assert refused.waiting() == []  # due: the next claim includes its rows again
    assert "a" in refused  # still counted as refused until a row of it is accepted


def test_an_accepted_row_clears_its_key_and_restarts_its_backoff():
    clock = Clock()
    refused = RefusedKeys(first_backoff_s=1.0, clock=clock)
    refused.refuse("a")
    refused.refuse("b")

    refused.accepted("a")
    refused.accepted("never-refused")  # harmless

    assert refused.waiting() == ["b"] and "a" not in refused
    assert refused.refuse("a") == 1.0
