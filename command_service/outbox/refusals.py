"""Which aggregates the relay holds back because the broker refuses one of their messages.

A broker refuses a record for what it is (larger than the topic's `max.message.bytes`, say),
and Kafka answers for a whole partition batch: every record sent with the bad one fails with
the same error. The relay therefore sends the refused rows again one at a time; the aggregate
whose row is refused on its own is held back (its later rows stay unsent, so its order is
kept), with a backoff before the next try, while every other aggregate keeps flowing. Once the
cause is removed (the topic's limit raised, say), the next try goes through and the aggregate's
rows follow in order.

Pure: the clock is injected, so the backoff is unit-tested without waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka.errors import (
    BrokerResponseError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
)

from shared.backoff import Backoff

# Kafka error codes that judge the record, not the connection: MESSAGE_TOO_LARGE,
# RECORD_LIST_TOO_LARGE, INVALID_RECORD. Retrying the same bytes can never succeed.
RECORD_REFUSAL_CODES = frozenset({10, 18, 87})


def is_record_refusal(result: object) -> bool:
    if isinstance(result, MessageSizeTooLargeError):  # also raised client-side by send()
        return True
    return isinstance(result, BrokerResponseError) and result.errno in RECORD_REFUSAL_CODES


def needs_lone_resend(result: object) -> bool:
    """A row that failed with its batch: refused itself, or refused for a batch mate, or (on
    an idempotent producer) out of sequence after such a refusal."""
    return is_record_refusal(result) or isinstance(result, OutOfOrderSequenceNumber)


@dataclass
class _Refusal:
    attempts: int
    retry_at: float


class RefusedKeys:
    """Message keys (aggregate ids) whose next message the broker refused, with their backoff."""

    def __init__(self, first_backoff_s: float = 1.0, max_backoff_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._backoff, self._clock = Backoff(first_backoff_s, max_backoff_s), clock
        self._refused: dict[str, _Refusal] = {}

    def __len__(self) -> int:
        return len(self._refused)

    def __contains__(self, key: object) -> bool:
        return key in self._refused

    def refuse(self, key: str) -> float:
        """Record one more refusal of `key`; returns the seconds until it is tried again."""
        attempts = self._refused[key].attempts + 1 if key in self._refused else 1
        backoff = self._backoff.delay_s(attempts)
        self._refused[key] = _Refusal(attempts, self._clock() + backoff)
        return backoff

    def accepted(self, key: str) -> None:
        self._refused.pop(key, None)

    def waiting(self) -> list[str]:
        """The keys to leave out of the next claim: refused, and not yet due for a retry."""
        now = self._clock()
        return sorted(key for key, refusal in self._refused.items() if refusal.retry_at > now)
