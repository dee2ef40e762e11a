"""One JSON Schema per event type and schema version, generated from the payload dataclasses
(the current ones in domain/events.py, the frozen older ones in domain/past_events.py).

A schema describes the whole Kafka message value: the envelope, which may gain fields (readers
ignore what they do not know), around the payload of exactly that version, which never changes
once published (a change is a new version). Every payload field must have a description here:
a field nobody documented does not reach the contract.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from command_service.domain.events import PUBLISHED_EVENTS, DomainEvent
from command_service.domain.past_events import PAST_PAYLOADS

Schema = dict[str, Any]
JSON_SCHEMA_DRAFT = "http://json-schema.org/draft-07/schema#"  # what AsyncAPI 3 schemas extend

UUID: Schema = {"type": "string", "format": "uuid"}
MINOR_UNITS = "in minor units of the account's currency (cents: 1250 is 12.50)"
ACCOUNT_TYPE: Schema = {"enum": ["checking", "savings"], "description": "The kind of account."}

# Each payload field: its description and constraints; the JSON type comes from the dataclass.
PAYLOAD_FIELDS: dict[str, Schema] = {
    "customer_id": UUID | {"description": "The customer's id."},
    "name": {"minLength": 1, "maxLength": 200, "description": "The customer's full name."},
    "email": {"format": "email", "maxLength": 320,
              "description": "The customer's email address, as they gave it."},
    "account_id": UUID | {"description": "The account's id, the same as `aggregate_id`."},
    "currency": {"pattern": "^[A-Z]{3}$",
                 "description": "ISO 4217 code of the account's currency (USD, EUR, GBP, INR)."},
    "type": ACCOUNT_TYPE,
    "account_type": ACCOUNT_TYPE,
    "initial_deposit_minor": {"minimum": 0, "description": f"The initial deposit {MINOR_UNITS}; "
                                                         "0 when none was made."},
    "balance_after_minor": {"minimum": 0, "description": "The account's balance after this "
                                                         f"event {MINOR_UNITS}."},
    "amount_minor": {"minimum": 1, "description": f"The amount moved {MINOR_UNITS}, always "
                                                  "positive; the event type gives the direction."},
    "transaction_id": {"description": "The transaction's id, unique among transactions (null on "
                                      "an account opened without a deposit)."},
    "reference": {"maxLength": 140, "description": "The customer's reference, if they gave one."},
    "transfer_id": UUID | {"description": "The transfer's id, shared by its two events."},
    "counterparty_account_id": UUID | {"description": "The other account of the transfer."},
    "reason": {"minLength": 1, "maxLength": 200, "description": "Why the account was frozen."},
    # A field whose meaning differs in one event type: "<EventType>.<field>" wins.
    "CustomerClosed.reason": {"maxLength": 200,
                              "description": "Why the customer was closed, if a reason was given."},
}

ENVELOPE_FIELDS: dict[str, Schema] = {
    "event_id": UUID | {"description": "The event's unique id: deduplicate on it."},
    "aggregate_id": UUID | {"description": "The customer or account the event belongs to; also "
                                           "the Kafka message key."},
    "version": {"type": "integer", "minimum": 1,
                "description": "The aggregate's version after this event: 1, 2, 3, … without "
                               "gaps per aggregate, so a consumer can detect a missing event."},
    "position": {"type": "integer", "minimum": 1,
                 "description": "The event's position in the service's event log: unique and "
                                "increasing, not gap-free; across aggregates it is not a commit "
                                "order (within one, `version` is)."},
    "occurred_at": {"type": "string", "format": "date-time",
                    "description": "When the event happened, UTC with microseconds."},
    "command_id": UUID | {"description": "The command that caused the event "
                                         "(GET /v1/commands/{command_id})."},
}


def _json_type(annotation: Any) -> Schema:
    if annotation is str:
        return {"type": "string"}
    if annotation is int:
        return {"type": "integer"}
    if isinstance(annotation, types.UnionType):
        members = typing.get_args(annotation)
        if len(members) == 2 and type(None) in members:
            [inner] = [m for m in members if m is not type(None)]
            return {"type": [_json_type(inner)["type"], "null"]}
    raise TypeError(f"no JSON Schema type for {annotation!r}")


def payload_schema(shape: type) -> Schema:
    """The payload of one version: exactly these fields, every one present."""
    hints = typing.get_type_hints(shape)
    envelope = getattr(shape, "_ENVELOPE_FIELDS", frozenset())
    properties: Schema = {}
    for field in dataclasses.fields(shape):
        if field.name in envelope:
            continue
        described = PAYLOAD_FIELDS.get(f"{shape.__name__}.{field.name}",
                                       PAYLOAD_FIELDS.get(field.name))
        if described is None:
            raise KeyError(f"{shape.__name__}.{field.name} has no description in "
                           "command_service/event_contract/schemas.py PAYLOAD_FIELDS")
        schema = _json_type(hints[field.name]) | described
        if "enum" in schema:  # an enum's values say its type, and null is not among them
            schema.pop("type")
        properties[field.name] = schema
    return {"type": "object", "required": list(properties), "properties": properties,
            "additionalProperties": False}


def message_schema(event_type: str, version: int, aggregate_type: str, shape: type) -> Schema:
    description = " ".join((shape.__doc__ or "").split())
    return {
        "$schema": JSON_SCHEMA_DRAFT,
        "$id": schema_file(event_type, version),
        "title": f"{event_type}, schema version {version}",
        "description": description,
        "type": "object",
        # Messages written before schema versions existed carry none: they are version 1.
        "required": ["event_id", "event_type", *(["schema_version"] if version > 1 else []),
                     "aggregate_type", "aggregate_id", "version", "position", "occurred_at",
                     "command_id", "payload"],
        "properties": {
            "event_id": ENVELOPE_FIELDS["event_id"],
            "event_type": {"const": event_type},
            "schema_version": {"const": version, **({"default": 1} if version == 1 else {}),
                               "description": "The version of this event type's payload shape"
                               + (" (absent from messages written before versions existed)."
                                  if version == 1 else ".")},
            "aggregate_type": {"const": aggregate_type},
            **{name: ENVELOPE_FIELDS[name] for name in
               ("aggregate_id", "version", "position", "occurred_at", "command_id")},
            "payload": payload_schema(shape),
        },
        # Readers ignore envelope fields they do not know: a later release may add some.
        "additionalProperties": True,
    }


def schema_file(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}.schema.json"


def message_schemas() -> dict[tuple[str, int], Schema]:
    """(event type, schema version) -> its schema, for every version ever published."""
    current: dict[str, type[DomainEvent]] = {cls.__name__: cls for cls in PUBLISHED_EVENTS}
    shapes: dict[tuple[str, int], type] = dict(PAST_PAYLOADS)
    shapes.update({(name, cls.schema_version): cls for name, cls in current.items()})
    return {
        (event_type, version): message_schema(
            event_type, version, current[event_type].aggregate_type, shape)
        for (event_type, version), shape in sorted(
            shapes.items(), key=lambda item: (list(current).index(item[0][0]), item[0][1]))
    }
