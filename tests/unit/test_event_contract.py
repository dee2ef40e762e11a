"""The published event contract (docs/events/): generated from the code, checked in, valid,
and describing every message the service publishes, old and new."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass

import jsonschema
import pytest

from command_service.domain.events import PUBLISHED_EVENTS
from command_service.domain.past_events import PAST_PAYLOADS
from command_service.event_contract import ASYNCAPI_FILE, differences
from command_service.event_contract.asyncapi import message_name
from command_service.event_contract.schemas import payload_schema
from tests.support.asyncapi_spec import asyncapi_schema
from tests.support.history import FROZEN_HISTORIES, drive, frozen_messages
from tests.support.published_events import EVENTS_DOCS, contract_errors, validators


def test_the_checked_in_contract_is_the_one_the_code_generates():
    assert differences(EVENTS_DOCS) == [], "run `cqrs-accounts schema` and commit docs/events/"


def test_there_is_a_schema_file_for_every_event_type_and_version_ever_published():
    published = {(cls.__name__, cls.schema_version) for cls in PUBLISHED_EVENTS}
    assert set(validators()) == published | set(PAST_PAYLOADS)


def test_the_asyncapi_document_is_valid_asyncapi_3():
    schema, missing = asyncapi_schema()
    if schema is None:
        pytest.skip(f"the AsyncAPI specification's schema cannot be had: {missing}")
    document = json.loads((EVENTS_DOCS / ASYNCAPI_FILE).read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert [e.message for e in validator.iter_errors(document)] == []
    broken = copy.deepcopy(document)
    broken["operations"]["publishEvents"]["action"] = "publish"  # AsyncAPI 2's word
    assert list(validator.iter_errors(broken)), "the specification's schema checks nothing"


def test_each_asyncapi_message_carries_the_schema_of_its_file():
    document = json.loads((EVENTS_DOCS / ASYNCAPI_FILE).read_text(encoding="utf-8"))
    messages = document["components"]["messages"]
    assert set(messages) == {message_name(t, v) for t, v in validators()}
    for (event_type, version), validator in validators().items():
        payload = messages[message_name(event_type, version)]["payload"]
        assert payload == {k: v for k, v in validator.schema.items()
                           if k not in ("$schema", "$id")}
    channel = document["channels"]["events"]
    assert channel["address"] == "cqrs-accounts.events"
    assert set(channel["messages"]) == set(messages)


def test_every_message_of_the_current_release_holds_to_its_schema():
    for event in drive().log:
        assert contract_errors(json.loads(event.to_json())) == [], event.event_type


def test_every_message_an_older_release_published_holds_to_the_schema_of_its_version():
    for history in FROZEN_HISTORIES:
        for message in map(json.loads, frozen_messages(history)):
            # As it was published: one written before versions existed carries none.
            assert contract_errors(message) == [], (history.name, message["event_type"])


@pytest.mark.parametrize(("change", "complaint"), [
    (lambda m: m["payload"].update(amount_minor=0), "payload.amount_minor"),
    (lambda m: m["payload"].update(channel="mobile"), "Additional properties"),
    (lambda m: m["payload"].pop("reference"), "'reference' is a required property"),
    (lambda m: m.update(event_id="not-a-uuid"), "event_id"),
    (lambda m: m.update(occurred_at="2026-03-01 09:00"), "occurred_at"),
    (lambda m: m.update(schema_version=9), "no schema in docs/events/ for MoneyDeposited v9"),
])
def test_a_message_that_breaks_the_contract_is_reported(change, complaint):
    deposit = next(e for e in drive().log if e.event_type == "MoneyDeposited")
    message = json.loads(deposit.to_json())
    change(message)
    assert any(complaint in error for error in contract_errors(message)), contract_errors(message)


def test_a_payload_field_nobody_described_cannot_reach_the_contract():
    @dataclass
    class Undocumented:
        colour: str

    with pytest.raises(KeyError, match="Undocumented.colour has no description"):
        payload_schema(Undocumented)
