"""`cqrs-accounts status`: one screen answering "is it healthy, how far behind is each read
model, what is failing": outbox backlog, the active relay, consumer lag per partition, how
far each view trails the event log, and dead letters."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pymongo.asynchronous.database import AsyncDatabase
from rich.console import Group
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from command_service import event_log
from command_service.outbox.backlog import outbox_backlog
from command_service.outbox.lease import current_lease
from projector.dead_letters import DeadLetters
from shared.config import Settings
from shared.envelope import iso_utc
from shared.readmodel import ACCOUNTS, CUSTOMERS, VIEWS, ViewDatabase


@dataclass
class Status:
    unsent: int = 0
    oldest_unsent_s: float | None = None
    relay_holder: str | None = None
    relay_lease_expires: datetime | None = None
    events_total: int = 0
    newest_event_at: datetime | None = None
    partitions: dict[int, tuple[int | None, int | None]] = field(default_factory=dict)
    # Where a partition without a committed offset is read from (the projector starts at the
    # earliest message), so its lag is known too.
    first_offsets: dict[int, int] = field(default_factory=dict)
    broker_error: str | None = None
    broker_exception: Exception | None = None  # what reading the broker's offsets raised
    views: dict[str, tuple[int, datetime | None]] = field(default_factory=dict)
    parked: int = 0

    def lag(self) -> dict[int, int | None]:
        """Per partition; never below 0 (Tansu's end offsets can under-report)."""
        lags = {}
        for p, (end, committed) in self.partitions.items():
            start = committed if committed is not None else self.first_offsets.get(p)
            lags[p] = max(0, end - start) if end is not None and start is not None else None
        return lags


async def collect_status(settings: Settings, engine: AsyncEngine, db: AsyncDatabase) -> Status:
    status = Status()
    status.unsent, status.oldest_unsent_s = await outbox_backlog(engine)
    if lease := await current_lease(engine):
        status.relay_holder, status.relay_lease_expires = lease
    status.events_total, status.newest_event_at = await event_log.summary(engine)

    views = await ViewDatabase(db).refresh()
    for view in VIEWS:
        count = await views[view].estimated_document_count()
        newest_doc = None
        if view in (ACCOUNTS, CUSTOMERS):
            latest = await views[view].find({}, {"updated_at": 1}).sort(
                "updated_at", -1).limit(1).to_list()
            newest_doc = latest[0]["updated_at"] if latest else None
        status.views[view] = (count, newest_doc)
    status.parked = await DeadLetters(db).count_parked()

    try:
        status.partitions, status.first_offsets = await _partition_offsets(settings)
    except Exception as exc:  # the screen still shows everything else
        status.broker_error = f"{exc.__class__.__name__}: {exc}"[:200]
        status.broker_exception = exc
    return status


async def _partition_offsets(
        settings: Settings) -> tuple[dict[int, tuple[int | None, int | None]], dict[int, int]]:
    """Per partition: the end offset and the projector group's committed offset; and each
    partition's first offset. A consumer
    that names the group but subscribes to nothing reads the group's offsets without joining
    it (so it never triggers a rebalance of the running projectors)."""
    partitions = await _topic_partitions(settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers,
                                group_id=settings.kafka_consumer_group,
                                enable_auto_commit=False, request_timeout_ms=5000)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.kafka_topic, p) for p in partitions]
        ends = await consumer.end_offsets(tps) if tps else {}
        firsts = await consumer.beginning_offsets(tps) if tps else {}
        return ({tp.partition: (ends.get(tp), await consumer.committed(tp)) for tp in tps},
                {tp.partition: firsts[tp] for tp in tps if tp in firsts})
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()


async def _topic_partitions(settings: Settings) -> list[int]:
    """The topic's partitions, from a metadata request for that topic alone (a consumer only
    knows the partitions of topics it subscribed to)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers,
                                request_timeout_ms=5000)
    await admin.start()
    try:
        described = await admin.describe_topics([settings.kafka_topic])
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return sorted(p["partition"] for topic in described
                  if topic["topic"] == settings.kafka_topic and topic["error_code"] == 0
                  for p in topic["partitions"])


def behind_the_log_s(status: Status, newest_update: datetime | None) -> float | None:
    """How far a view's newest update trails the newest event, if both are known."""
    if newest_update is None or status.newest_event_at is None:
        return None
    return max(0.0, (status.newest_event_at - newest_update).total_seconds())


def lease_expired(status: Status, now: datetime) -> bool:
    expires = status.relay_lease_expires
    return expires is not None and expires.replace(tzinfo=UTC) < now


def as_json(status: Status) -> dict:
    """The figures `render` shows, as one JSON object (`status --json`, for scripts)."""
    lag = status.lag()
    return {
        "events": {"total": status.events_total, "newest_at": _iso(status.newest_event_at)},
        "outbox": {"unsent": status.unsent, "oldest_unsent_s": status.oldest_unsent_s},
        "relay": {"holder": status.relay_holder,
                  "lease_expires_at": _iso(status.relay_lease_expires),
                  "lease_expired": lease_expired(status, datetime.now(UTC))},
        "projector": {
            "partitions": [{"partition": p, "end_offset": end, "committed": committed,
                            "lag": lag[p]} for p, (end, committed) in status.partitions.items()],
            # None when a partition's lag is unknown: a script must not read that as caught up.
            "lag": (None if status.broker_error or None in lag.values()
                    else sum(lag.values())),
            "broker_error": status.broker_error,
        },
        "views": {view: {"documents": count, "newest_update": _iso(newest),
                         "behind_the_log_s": behind_the_log_s(status, newest)}
                  for view, (count, newest) in status.views.items()},
        "dead_letters": {"parked": status.parked},
    }


def _iso(moment: datetime | None) -> str | None:
    return iso_utc(moment) if moment else None  # naive (the write model's) is read as UTC


def render(status: Status) -> Group:
    now = datetime.now(UTC)
    overview = Table(title="cqrs-accounts status", show_header=False)
    overview.add_row("events in the log", str(status.events_total))
    overview.add_row("outbox backlog", f"{status.unsent} unsent" + (
        f", oldest {status.oldest_unsent_s:.1f}s" if status.oldest_unsent_s else ""))
    holder = status.relay_holder or "none"
    holder += " (lease expired)" if lease_expired(status, now) else ""
    overview.add_row("active relay", holder)
    overview.add_row("dead letters", f"{status.parked} parked")

    partitions = Table("partition", "end offset", "committed", "lag", title="projector group")
    for partition, (end, committed) in status.partitions.items():
        lag = status.lag()[partition]
        partitions.add_row(str(partition), str(end), str(committed),
                           "?" if lag is None else str(lag))
    if status.broker_error:
        partitions.add_row("-", "-", "-", f"broker: {status.broker_error}")

    views = Table("view", "documents", "newest update", "behind the log",
                  title="read models")
    for view, (count, newest) in status.views.items():
        behind = behind_the_log_s(status, newest)
        behind = "-" if behind is None else f"{behind:.1f}s"
        views.add_row(view, str(count), str(newest)[:23] if newest else "-", behind)
    return Group(overview, partitions, views)
