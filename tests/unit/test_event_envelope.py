"""The envelope on the wire: its JSON form and headers, and a tolerant reader of it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from shared.envelope import EventEnvelope, UndecodableEvent
from tests.support.bank import Bank

EVENT_ID = str(uuid.uuid4())


def frozen_account_event(**changes) -> EventEnvelope:
    fields = dict(event_id=EVENT_ID, event_type="AccountFrozen", schema_version=1,
                  aggregate_type="account", aggregate_id="acc-1", version=3,
                  occurred_at=datetime(2026, 3, 1, 9, tzinfo=UTC), command_id="cmd",
                  payload={"reason": "x"})
    return EventEnvelope(**(fields | changes))


def message(**changes) -> dict:
    data = json.loads(frozen_account_event().to_json())
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


def test_an_envelope_survives_its_json_round_trip():
    bank = Bank()
    bank.register()
    [event] = bank.log
    assert EventEnvelope.from_json(event.to_json()) == event
    assert EventEnvelope.from_json(event.to_json().encode()) == event


def test_the_envelope_json_is_compact_sorted_and_uses_utc_z_times():
    text = frozen_account_event().to_json()
    assert " " not in text
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert data["occurred_at"] == "2026-03-01T09:00:00.000000Z"
    assert data["version"] == 3 and data["position"] is None
    assert data["schema_version"] == 1


def test_envelope_headers_repeat_the_routing_fields_and_the_schema_version_as_bytes():
    envelope = frozen_account_event(schema_version=4)
    assert dict(envelope.headers()) == {
        "event_id": envelope.event_id.encode(), "event_type": b"AccountFrozen",
        "schema_version": b"4", "aggregate_type": b"account", "aggregate_id": b"acc-1",
        "version": b"3"}


def test_a_reader_ignores_envelope_fields_it_does_not_know():
    """A newer producer may add envelope fields; this release must read its events anyway."""
    newer = message(tenant="eu-1", trace={"sampled": True})
    assert EventEnvelope.from_json(json.dumps(newer)) == EventEnvelope.from_json(
        json.dumps(message()))


def test_a_reader_keeps_payload_fields_it_does_not_know_for_the_projections_to_ignore():
    newer = message(payload={"reason": "x", "channel": "mobile"})
    assert EventEnvelope.from_json(json.dumps(newer)).payload == {"reason": "x",
                                                                  "channel": "mobile"}


def test_a_message_from_before_schema_versions_is_version_1():
    assert EventEnvelope.from_json(json.dumps(message(schema_version=...))).schema_version == 1


@pytest.mark.parametrize("field", ["event_id", "event_type", "aggregate_type", "aggregate_id",
                                   "version", "occurred_at", "command_id", "payload"])
def test_a_message_without_a_required_field_is_undecodable_naming_it(field):
    with pytest.raises(UndecodableEvent, match=f"no '{field}'"):
        EventEnvelope.from_json(json.dumps(message(**{field: ...})))


@pytest.mark.parametrize(("field", "value"), [
    ("version", "3"), ("version", True), ("version", 3.0), ("event_type", 7),
    ("payload", ["reason"]), ("occurred_at", 1764633600), ("schema_version", "2"),
    ("schema_version", 0), ("schema_version", False), ("position", "12"),
    ("occurred_at", "yesterday"),
])
def test_a_field_of_the_wrong_type_makes_a_message_undecodable(field, value):
    with pytest.raises(UndecodableEvent, match=field):
        EventEnvelope.from_json(json.dumps(message(**{field: value})))


@pytest.mark.parametrize("raw", [b"", b"\xff\xfe", b"{not json", b"[1, 2]", b"null", b'"x"'])
def test_what_is_not_a_json_object_is_undecodable(raw):
    with pytest.raises(UndecodableEvent):
        EventEnvelope.from_json(raw)
