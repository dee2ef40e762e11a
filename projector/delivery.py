"""What a consumed batch holds once decoded: the events this release reads (upcast to the
versions its projections are written for), the events it cannot read yet (a newer type or
schema version: parked with that reason, applied by `dlq retry` after an upgrade), and the
messages that are no event at all (parked as undecodable, only ever discarded)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from shared.envelope import EventEnvelope, UndecodableEvent
from shared.observability import LOG_CONTEXT, bind
from shared.upcasting import EventReader, UnreadableEvent

# The consumer loop's logger: these records are its own, decoding is just where they start.
log = logging.getLogger("projector.consumer")

AFTER_THE_UPGRADE = "deploy a projector that reads it, then `cqrs-accounts dlq retry`"


class Delivered:
    """An event and where it came from, so its offset can bound the commit."""

    __slots__ = ("event", "partition", "offset", "headers", "raw", "fetched_at")

    def __init__(self, event: EventEnvelope, partition: TopicPartition, offset: int,
                 headers: dict[str, str], fetched_at: float, raw: str | None = None) -> None:
        self.event, self.partition, self.offset = event, partition, offset
        self.headers = headers
        self.raw = raw  # the message value as sent, kept for an event parked as unreadable
        # when the consumer handed it over (time.time()): an event held back for a gap keeps
        # its own, so its wait counts in the time to its write
        self.fetched_at = fetched_at

    def log(self, level: int, message: str, *args) -> None:
        """Log in the context of the command that caused this event (its Kafka headers)."""
        token = bind(correlation_id=self.headers.get("correlation_id"),
                     causation_id=self.headers.get("causation_id"),
                     command_id=self.event.command_id, event_id=self.event.event_id)
        try:
            log.log(level, message, *args)
        finally:
            LOG_CONTEXT.reset(token)


@dataclass
class DecodedBatch:
    readable: list[Delivered] = field(default_factory=list)
    unreadable: list[tuple[Delivered, str]] = field(default_factory=list)  # with the reason
    undecodable: list[tuple[TopicPartition, object, str]] = field(default_factory=list)
    # Seconds from each record's CreateTime (the relay's producer) to its fetch.
    produce_to_fetch: list[float] = field(default_factory=list)


_CREATE_TIME = 0  # a record's timestamp type: set by the producer (1 would be the broker's)


def decode_batch(batch: dict[TopicPartition, list], reader: EventReader,
                 fetched_at: float) -> DecodedBatch:
    """`fetched_at`: when getmany returned the batch (time.time())."""
    decoded = DecodedBatch()
    for partition, messages in batch.items():
        for message in messages:
            if message.timestamp_type == _CREATE_TIME and message.timestamp > 0:
                decoded.produce_to_fetch.append(
                    max(0.0, fetched_at - message.timestamp / 1000))
            try:
                event = EventEnvelope.from_json(message.value)
            except UndecodableEvent as exc:
                log.error("undecodable message at %s@%d: %s", partition, message.offset, exc)
                decoded.undecodable.append((partition, message, f"undecodable: {exc}"))
                continue
            headers = {k: v.decode(errors="replace") for k, v in message.headers or ()}
            try:
                delivered = Delivered(reader.read(event), partition, message.offset, headers,
                                      fetched_at)
            except UnreadableEvent as exc:
                raw = message.value.decode() if isinstance(message.value, bytes) \
                    else message.value
                decoded.unreadable.append((Delivered(event, partition, message.offset, headers,
                                                     fetched_at, raw),
                                           f"{exc}; {AFTER_THE_UPGRADE}"))
                continue
            decoded.readable.append(delivered)
    return decoded
