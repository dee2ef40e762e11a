"""The AsyncAPI 3 document of the events topic: the channel, its Kafka key and headers, and
one message per event type and schema version, each with the same schema as its file in
docs/events/ (https://www.asyncapi.com/docs/reference/specification/v3.0.0)."""

from __future__ import annotations

from typing import Any

from command_service.event_contract.schemas import Schema

KAFKA_BINDING_VERSION = "0.5.0"

HEADERS: dict[str, Schema] = {
    "event_id": {"type": "string", "description": "As in the value."},
    "event_type": {"type": "string", "description": "As in the value: filter without parsing it."},
    "schema_version": {"type": "string", "pattern": "^[1-9][0-9]*$",
                       "description": "As in the value, in decimal."},
    "aggregate_type": {"type": "string", "description": "As in the value."},
    "aggregate_id": {"type": "string", "description": "As in the value, and the key."},
    "version": {"type": "string", "pattern": "^[1-9][0-9]*$",
                "description": "As in the value, in decimal."},
    "correlation_id": {"type": "string",
                       "description": "The request id of the HTTP request behind the command."},
    "causation_id": {"type": "string", "description": "The command id."},
    "traceparent": {"type": "string",
                    "description": "W3C trace context of the command, when tracing is on."},
}
ROUTING_HEADERS = ["event_id", "event_type", "schema_version", "aggregate_type",
                   "aggregate_id", "version"]


def message_name(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}"


def _message(event_type: str, version: int, schema: Schema) -> dict[str, Any]:
    # Before schema versions existed, no message had the header: version 1 may lack it.
    required = [h for h in ROUTING_HEADERS if version > 1 or h != "schema_version"]
    headers = {"type": "object", "required": required, "properties": {
        **HEADERS, "event_type": {"const": event_type},
        "schema_version": {"const": str(version)}}}
    payload = {key: value for key, value in schema.items() if key not in ("$schema", "$id")}
    return {
        "name": event_type,
        "title": schema["title"],
        "summary": schema["description"],
        "contentType": "application/json",
        "headers": headers,
        "payload": payload,
        "bindings": {"kafka": {
            "key": {"type": "string", "format": "uuid", "description": "The aggregate id: one "
                    "aggregate's events share a partition, in version order."},
            "bindingVersion": KAFKA_BINDING_VERSION}},
    }


def asyncapi_document(schemas: dict[tuple[str, int], Schema], *, version: str, topic: str,
                      partitions: int) -> dict[str, Any]:
    messages = {message_name(t, v): _message(t, v, s) for (t, v), s in schemas.items()}
    references = {name: {"$ref": f"#/components/messages/{name}"} for name in messages}
    channel_messages = [{"$ref": f"#/channels/events/messages/{name}"} for name in messages]
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "cqrs-accounts events",
            "version": version,
            "description": (
                "Every change of a bank customer or account, as the command service commits it "
                "(transactional outbox, at-least-once). Deduplicate on `event_id`; keep order "
                "per aggregate with `version`. Readers must ignore fields they do not know; a "
                "message without `schema_version` was written before versions existed and is "
                "version 1. How events change: docs/events/README.md."),
        },
        "defaultContentType": "application/json",
        "servers": {"dev": {"host": "127.0.0.1:9092", "protocol": "kafka",
                            "description": "`make dev` (when the port is free)"}},
        "channels": {"events": {
            "address": topic,
            "title": "All events of customers and accounts",
            "description": "Keyed by aggregate id; the topic name is CQRS_KAFKA_TOPIC.",
            "messages": references,
            "bindings": {"kafka": {"topic": topic, "partitions": partitions,
                                   "bindingVersion": KAFKA_BINDING_VERSION}},
        }},
        "operations": {
            "publishEvents": {"action": "send", "channel": {"$ref": "#/channels/events"},
                              "summary": "The relay publishes each committed event.",
                              "messages": channel_messages},
            "consumeEvents": {"action": "receive", "channel": {"$ref": "#/channels/events"},
                              "summary": "The projector, and any other consumer.",
                              "messages": channel_messages},
        },
        "components": {"messages": messages},
    }
