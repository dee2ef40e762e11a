"""The published form of a domain event and the headers its outbox row carries: what the relay
sends, byte for byte, and what lets the relay and the projector continue the command's story
(its correlation id from the log context, its cause, its trace)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from command_service.db.tables import naive_utc
from command_service.domain.events import DomainEvent
from shared.envelope import EventEnvelope
from shared.observability import current
from shared.tracing import current_traceparent


def envelope_of(event: DomainEvent, command_id: str) -> EventEnvelope:
    """The published form of a domain event (its position is set once it is stored)."""
    return EventEnvelope(
        event_id=str(uuid.uuid4()), event_type=event.event_type,
        schema_version=event.schema_version,
        aggregate_type=event.aggregate_type, aggregate_id=event.aggregate_id,
        version=event.version, occurred_at=event.occurred_at.astimezone(UTC),
        command_id=command_id, payload=event.payload(),
    )


def outbox_headers(envelope: EventEnvelope) -> dict[str, str]:
    """The routing headers, plus what lets the relay and the projector continue the
    command's story: its correlation id (the request id), its cause (the command) and,
    when tracing, its trace."""
    headers = {k: v.decode() for k, v in envelope.headers()}
    headers["correlation_id"] = current("correlation_id") or envelope.command_id
    headers["causation_id"] = envelope.command_id
    traceparent = current_traceparent()
    if traceparent:
        headers["traceparent"] = traceparent
    return headers


def outbox_row(envelope: EventEnvelope, topic: str, created_at: datetime) -> dict:
    """The outbox row that carries a stored event (its position set) as the exact message the
    relay will send."""
    return dict(event_position=envelope.position, topic=topic,
                message_key=envelope.aggregate_id, headers=json.dumps(outbox_headers(envelope)),
                payload=envelope.to_json(), created_at=created_at)


def event_row(envelope: EventEnvelope) -> dict:
    """The events-table row of an envelope (its position is assigned by the insert, unless
    the caller sets one)."""
    return dict(event_id=envelope.event_id, aggregate_type=envelope.aggregate_type,
                aggregate_id=envelope.aggregate_id, version=envelope.version,
                event_type=envelope.event_type, schema_version=envelope.schema_version,
                payload=json.dumps(envelope.payload), occurred_at=naive_utc(envelope.occurred_at),
                command_id=envelope.command_id)
