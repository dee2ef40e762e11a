"""Reading an event of any schema version as the version this release understands.

Every event type has an integer schema version, written into the envelope by the producer.
This module says which version of each type this release reads (`READABLE_VERSIONS`) and holds
the upcasters: pure functions, one per (event type, from-version), that turn a payload of one
version into the next. `EventReader.read` chains them, so projections only ever see the shape
of the version they were written for; it is applied wherever stored or delivered events are
read (the projector, `dlq retry`, and the event log that `rebuild` and `verify` fold).

An event this release cannot read (a type it does not know, or a version newer than it knows)
is an `UnreadableEvent`: the projector parks it with that reason, and `dlq retry` applies it
once a release that reads it is deployed. How to change an event: docs/events/README.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shared.envelope import EventEnvelope

Payload = dict
Upcaster = Callable[[Payload], Payload]

# The schema version of each event type that this release's projections are written for. A
# reader may know a version before any producer writes it (deploy readers first); it must
# know every version this release's producer writes (tests/unit/test_upcasting.py).
READABLE_VERSIONS: Mapping[str, int] = {
    "CustomerRegistered": 1,
    "CustomerRenamed": 1,
    "CustomerEmailChanged": 1,
    "CustomerClosed": 1,
    "AccountOpened": 2,
    "MoneyDeposited": 1,
    "MoneyWithdrawn": 1,
    "TransferSent": 1,
    "TransferReceived": 1,
    "AccountFrozen": 1,
    "AccountUnfrozen": 1,
    "AccountClosed": 1,
}

UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register `function` as the step from `from_version` to `from_version + 1`."""
    def register(function: Upcaster) -> Upcaster:
        if (event_type, from_version) in UPCASTERS:
            raise ValueError(f"two upcasters for {event_type} v{from_version}")
        UPCASTERS[(event_type, from_version)] = function
        return function
    return register


@upcaster("AccountOpened", 1)
def account_opened_v1_to_v2(payload: Payload) -> Payload:
    """v2 names the account's kind `type`, as the HTTP contract and every view do (v1 said
    `account_type`, the write model's column name, leaking into the published contract)."""
    upcast = {name: value for name, value in payload.items() if name != "account_type"}
    upcast["type"] = payload["account_type"]
    return upcast


class UnreadableEvent(Exception):
    """A well-formed event that this release cannot apply; the message says why."""


class UnknownEventType(UnreadableEvent):
    pass


class NewerSchemaVersion(UnreadableEvent):
    pass


@dataclass(frozen=True)
class EventReader:
    readable_versions: Mapping[str, int]
    upcasters: Mapping[tuple[str, int], Upcaster]

    def read(self, event: EventEnvelope) -> EventEnvelope:
        """`event` at the version this reader understands, upcast step by step if older."""
        target = self.readable_versions.get(event.event_type)
        if target is None:
            raise UnknownEventType(
                f"unknown event type {event.event_type} (schema version "
                f"{event.schema_version}): a newer release writes it")
        if event.schema_version > target:
            raise NewerSchemaVersion(
                f"{event.event_type} schema version {event.schema_version} is newer than this "
                f"release reads ({target})")
        if event.schema_version == target:
            return event
        payload = event.payload
        for version in range(event.schema_version, target):
            step = self.upcasters.get((event.event_type, version))
            if step is None:
                raise UnreadableEvent(f"no upcaster from {event.event_type} v{version}")
            try:
                payload = step(payload)
            except Exception as exc:  # whatever it is, the event cannot be read: park it
                raise UnreadableEvent(f"cannot upcast {event.event_type} v{version}: "
                                      f"{exc.__class__.__name__} {exc}") from None
        return dataclasses.replace(event, schema_version=target, payload=payload)


READER = EventReader(READABLE_VERSIONS, UPCASTERS)
