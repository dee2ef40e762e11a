"""Reading older events as current ones: each upcaster, the chain, and what cannot be read.

Every upcaster has a test here named `test_<its function name>` (the last test checks it)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from command_service.domain.events import PUBLISHED_EVENTS
from command_service.domain.past_events import PAST_PAYLOADS
from shared.envelope import EventEnvelope
from shared.upcasting import (
    READABLE_VERSIONS,
    READER,
    UPCASTERS,
    EventReader,
    NewerSchemaVersion,
    UnknownEventType,
    UnreadableEvent,
    account_opened_v1_to_v2,
)
from tests.support.history import frozen_messages


def frozen(event_type: str) -> EventEnvelope:
    """The first `event_type` of the frozen history the release before versions published."""
    return next(e for e in map(EventEnvelope.from_json, frozen_messages())
                if e.event_type == event_type)


def test_account_opened_v1_to_v2():
    v1 = frozen("AccountOpened")
    assert v1.schema_version == 1 and "account_type" in v1.payload
    assert account_opened_v1_to_v2(v1.payload) == {
        "account_id": "5d1b5a8e-0000-4000-8000-0000000000a1",
        "customer_id": "0b7e6c1a-0000-4000-8000-00000000000a", "currency": "USD",
        "type": "checking", "initial_deposit_minor": 10_000, "balance_after_minor": 10_000,
        "transaction_id": "tx-open-5d1b5a8e-0000-4000-8000-0000000000a1"}


def test_an_upcaster_leaves_the_payload_it_was_given_alone():
    v1 = frozen("AccountOpened")
    before = json.dumps(v1.payload, sort_keys=True)
    READER.read(v1)
    assert json.dumps(v1.payload, sort_keys=True) == before


def test_reading_an_older_event_upcasts_its_payload_and_says_the_version_it_is_now():
    v1 = frozen("AccountOpened")
    read = READER.read(v1)
    assert read.schema_version == READABLE_VERSIONS["AccountOpened"] == 2
    assert read.payload == account_opened_v1_to_v2(v1.payload)
    assert dataclasses.replace(read, payload=v1.payload, schema_version=1) == v1


def test_a_current_event_is_read_as_it_is():
    event = frozen("MoneyDeposited")
    assert READER.read(event) is event


def test_an_unknown_event_type_is_unreadable_and_says_so():
    nicknamed = dataclasses.replace(frozen("AccountFrozen"), event_type="AccountNicknamed")
    with pytest.raises(UnknownEventType, match="unknown event type AccountNicknamed"):
        READER.read(nicknamed)


def test_a_schema_version_newer_than_the_reader_knows_is_unreadable_and_says_so():
    newer = dataclasses.replace(frozen("MoneyDeposited"), schema_version=2)
    with pytest.raises(NewerSchemaVersion, match="schema version 2 is newer than this release "
                                                 r"reads \(1\)"):
        READER.read(newer)


def test_a_newer_reader_reads_what_an_older_one_parks():
    newer = dataclasses.replace(frozen("MoneyDeposited"), schema_version=2)
    upgraded = EventReader({**READABLE_VERSIONS, "MoneyDeposited": 2}, UPCASTERS)
    assert upgraded.read(newer) is newer


def test_an_older_payload_an_upcaster_cannot_read_is_unreadable_naming_the_step():
    broken = frozen("AccountOpened")
    broken = dataclasses.replace(broken, payload={k: v for k, v in broken.payload.items()
                                                  if k != "account_type"})
    with pytest.raises(UnreadableEvent, match="cannot upcast AccountOpened v1: KeyError"):
        READER.read(broken)


def test_any_failure_of_an_upcaster_makes_the_event_unreadable_rather_than_escaping():
    def explode(payload):
        raise RuntimeError("a bug in an upcaster")

    reader = EventReader(READABLE_VERSIONS, {**UPCASTERS, ("AccountOpened", 1): explode})
    with pytest.raises(UnreadableEvent, match="RuntimeError a bug in an upcaster"):
        reader.read(frozen("AccountOpened"))


def test_this_release_reads_every_event_type_and_version_it_writes():
    """A reader may know a version before the writer writes it (readers deploy first), never
    the other way round."""
    written = {cls.__name__: cls.schema_version for cls in PUBLISHED_EVENTS}
    assert set(written) == set(READABLE_VERSIONS)
    for event_type, version in written.items():
        assert version <= READABLE_VERSIONS[event_type], event_type


def test_every_version_below_the_readable_one_has_an_upcaster_and_none_goes_beyond():
    for event_type, readable in READABLE_VERSIONS.items():
        for version in range(1, readable):
            assert (event_type, version) in UPCASTERS, f"{event_type} v{version}"
    for event_type, version in UPCASTERS:
        assert version < READABLE_VERSIONS[event_type], f"{event_type} v{version}"


def test_every_version_no_longer_written_keeps_its_frozen_shape():
    for cls in PUBLISHED_EVENTS:
        for version in range(1, cls.schema_version):
            assert (cls.__name__, version) in PAST_PAYLOADS, f"{cls.__name__} v{version}"
    for event_type, version in PAST_PAYLOADS:
        written = next(c for c in PUBLISHED_EVENTS if c.__name__ == event_type).schema_version
        assert version < written


def test_every_upcaster_has_its_own_test():
    tests = {name for name in globals() if name.startswith("test_")}
    for step in UPCASTERS.values():
        assert f"test_{step.__name__}" in tests, step.__name__
