"""The published event contract, shared by the write side (outbox) and the read side (projector).

The Kafka message value is this envelope as compact JSON; the message key is the aggregate id,
so one aggregate's events share a partition and keep their order. Headers repeat the routing
fields so consumers can filter without parsing the value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class EventEnvelope:
    event_id: str
    event_type: str
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
        data = json.loads(raw)
        data["occurred_at"] = parse_iso_utc(data["occurred_at"])
        return cls(**data)

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            ("event_id", self.event_id.encode()),
            ("event_type", self.event_type.encode()),
            ("aggregate_type", self.aggregate_type.encode()),
            ("aggregate_id", self.aggregate_id.encode()),
            ("version", str(self.version).encode()),
        ]


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
