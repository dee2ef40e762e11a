"""The published event contract, shared by the write side (outbox) and the read side (projector).

The Kafka message value is this envelope as compact JSON; the message key is the aggregate id,
so one aggregate's events share a partition and keep their order. Headers repeat the routing
fields so consumers can filter without parsing the value.

Decoding is tolerant (docs/events/README.md): a field this release does not know is ignored,
so a newer producer that adds one never makes this reader park anything, and a message of a
release before schema versions existed is schema version 1. What the payload means is the
upcasters' business (shared/upcasting.py), not the envelope's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# What a message must carry to be an event at all, with the JSON type of each.
_REQUIRED: dict[str, type] = {
    "event_id": str, "event_type": str, "aggregate_type": str, "aggregate_id": str,
    "version": int, "occurred_at": str, "command_id": str, "payload": dict,
}
# Messages written before schema versions existed carry none: they are version 1.
FIRST_SCHEMA_VERSION = 1


class UndecodableEvent(ValueError):
    """A message that is not an event envelope at all (not JSON, or a required field missing
    or of the wrong type): no release can apply it, it can only be discarded."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EventEnvelope:
    event_id: str
    event_type: str
    schema_version: int  # of this event type's payload; see docs/events/
    aggregate_type: str
    aggregate_id: str
    version: int
    occurred_at: datetime  # UTC
    command_id: str
    payload: dict[str, Any]
    position: int | None = None  # global position in the events table, once stored

    def to_json(self) -> str:
        # Not dataclasses.asdict: it deep-copies the payload, for nothing.
        data = {name: getattr(self, name) for name in self.__slots__}
        data["occurred_at"] = iso_utc(self.occurred_at)
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> EventEnvelope:
        try:
            data = json.loads(raw)
        except (ValueError, TypeError) as exc:  # UnicodeDecodeError is a ValueError
            raise UndecodableEvent(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise UndecodableEvent(f"not a JSON object but {type(data).__name__}")
        for name, kind in _REQUIRED.items():
            if name not in data:
                raise UndecodableEvent(f"no {name!r}")
            if not isinstance(data[name], kind) or isinstance(data[name], bool):
                raise UndecodableEvent(f"{name!r} is not a {_json_type(kind)}")
        schema_version = data.get("schema_version", FIRST_SCHEMA_VERSION)
        position = data.get("position")
        if not _is_int(schema_version) or schema_version < 1:
            raise UndecodableEvent("'schema_version' is not a positive integer")
        if position is not None and not _is_int(position):
            raise UndecodableEvent("'position' is not an integer")
        try:
            occurred_at = parse_iso_utc(data["occurred_at"])
        except ValueError:
            raise UndecodableEvent("'occurred_at' is not an ISO 8601 time") from None
        return cls(event_id=data["event_id"], event_type=data["event_type"],
                   schema_version=schema_version, aggregate_type=data["aggregate_type"],
                   aggregate_id=data["aggregate_id"], version=data["version"],
                   occurred_at=occurred_at, command_id=data["command_id"],
                   payload=data["payload"], position=position)

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            ("event_id", self.event_id.encode()),
            ("event_type", self.event_type.encode()),
            ("schema_version", str(self.schema_version).encode()),
            ("aggregate_type", self.aggregate_type.encode()),
            ("aggregate_id", self.aggregate_id.encode()),
            ("version", str(self.version).encode()),
        ]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_type(kind: type) -> str:
    return {str: "string", int: "integer", dict: "object"}[kind]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """UTC ISO 8601 with microseconds and a `Z`: sorts as text, parses everywhere."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso_utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
