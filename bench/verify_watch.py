"""`python -m bench.verify_watch [--history 10000,100000]`: the time of one `verify --watch`
pass over a fixed set of 1,000 changed accounts (500 customers, about 5,000 events of their
own), after 10k and after 100k events of other customers' history (issue 16 asks for 10k and
1M; SecantusDB projected the views of 105k events in 18 minutes here, so 1M would take
hours: this run stops at 100k).

Per history size: a fresh SQLite write model and read-store database; the history, then the
changed customers, written as the command service writes events and state rows; every view
projected by `rebuild` (not measured); the watcher's checkpoint set where the changed customers
begin; then one pass is timed, and for contrast the whole-log `verify` (find_drift). The pass
must take about the same time whatever the history; the whole-log check must not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bench.workload import bank_history
from cli.servers.secantus import SecantusReadStore
from command_service.db.engine import create_engine
from command_service.db.migrate import upgrade_to_head
from command_service.db.tables import accounts, customers, events, naive_utc
from command_service.domain.events import AccountOpened, CustomerRegistered
from command_service.outbox_envelope import envelope_of
from operations.rebuild import rebuild
from operations.verify import find_drift
from operations.watch import Watcher
from operations.watch_feed import CHECKPOINTS, ChangeFeed
from shared.config import Settings
from shared.readmodel import ViewDatabase, make_mongo_client

CHANGED_ACCOUNTS = 1_000
RESULTS = Path(__file__).parent / "results"


def _rows(domain_events, start: int) -> tuple[list[dict], dict, dict]:
    """Event rows from `start` + 1 on, and the customers' and accounts' state rows."""
    rows, people, books = [], {}, {}
    for offset, event in enumerate(domain_events, start=1):
        envelope = replace(envelope_of(event, str(uuid.uuid4())), position=start + offset)
        rows.append(dict(position=envelope.position, event_id=envelope.event_id,
                         aggregate_type=envelope.aggregate_type,
                         aggregate_id=envelope.aggregate_id, version=envelope.version,
                         event_type=envelope.event_type,
                         schema_version=envelope.schema_version,
                         payload=json.dumps(envelope.payload),
                         occurred_at=naive_utc(envelope.occurred_at),
                         command_id=envelope.command_id))
        at = naive_utc(event.occurred_at)
        if isinstance(event, CustomerRegistered):
            people[event.customer_id] = dict(
                customer_id=event.customer_id, name=event.name, email=event.email,
                email_normalized=event.email.lower(), status="active", version=event.version,
                created_at=at, updated_at=at)
        elif isinstance(event, AccountOpened):
            books[event.account_id] = dict(
                account_id=event.account_id, customer_id=event.customer_id,
                account_type=event.type, currency=event.currency,
                balance_minor=event.balance_after_minor, status="active", freeze_reason=None,
                version=event.version, opened_at=at, updated_at=at)
        else:
            books[event.account_id].update(balance_minor=event.balance_after_minor,
                                           version=event.version, updated_at=at)
    return rows, people, books


async def _write(engine, domain_events, start: int) -> int:
    rows, people, books = _rows(domain_events, start)
    async with engine.begin() as conn:
        await conn.execute(customers.insert(), list(people.values()))
        await conn.execute(accounts.insert(), list(books.values()))
        for i in range(0, len(rows), 5000):
            await conn.execute(events.insert(), rows[i:i + 5000])
    return start + len(rows)


def _changed_customers():
    made = bank_history(5 * CHANGED_ACCOUNTS, CHANGED_ACCOUNTS, seed=2)
    return [replace(e, email=f"changed-{e.email}") if isinstance(e, CustomerRegistered) else e
            for e in made]


async def measure(history: int, store: SecantusReadStore, folder: Path) -> dict:
    url = f"sqlite+aiosqlite:///{folder / f'write-{history}.db'}"
    await asyncio.to_thread(upgrade_to_head, url)
    settings = Settings(database_url=url, mongo_url=store.mongo_url,
                        mongo_database=f"bench_verify_{history}", mongo_timeout_ms=60_000)
    engine, client = create_engine(settings), make_mongo_client(settings)
    db = client[settings.mongo_database]
    try:
        checkpoint = await _write(engine, bank_history(history, max(2, history // 50)), 0)
        last = await _write(engine, _changed_customers(), checkpoint)
        started = time.monotonic()
        await rebuild(engine, db)
        projected_s = time.monotonic() - started
        await db[CHECKPOINTS].replace_one({"_id": "checkpoint"}, {"position": checkpoint},
                                          upsert=True)
        views = ViewDatabase(db)
        feed = ChangeFeed(engine, db)
        await feed.load()
        started = time.monotonic()
        report = await Watcher(engine, views, feed, settle_s=0).run_pass()
        pass_s = time.monotonic() - started
        started = time.monotonic()
        whole = await find_drift(engine, views)
        whole_s = time.monotonic() - started
        return {"history_events": history, "events_in_log": last,
                "changed_events": last - checkpoint, "checked_aggregates": report.checked,
                "drift": len(report.drift), "pass_s": round(pass_s, 2),
                "whole_log_verify_s": round(whole_s, 2), "whole_log_drift": len(whole),
                "views_projected_by_rebuild_s": round(projected_s, 1)}
    finally:
        await client.drop_database(settings.mongo_database)
        await client.close()
        await engine.dispose()


async def main(histories: list[int]) -> list[dict]:
    folder = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    store = SecantusReadStore(folder / "store", folder / "secantus.log")
    store.start()
    try:
        rows = []
        for history in histories:
            rows.append(await measure(history, store, folder))
            print(json.dumps(rows[-1]), flush=True)
        return rows
    finally:
        store.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.verify_watch")
    parser.add_argument("--history", default="10000,100000",
                        help="comma-separated sizes of the history before the changes")
    args = parser.parse_args()
    rows = asyncio.run(main([int(n) for n in args.history.split(",")]))
    out = RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-verify-watch.json"
    out.write_text(json.dumps({"what": __doc__.split("\n\n")[0], "rows": rows}, indent=2) + "\n")
    print(f"written to {out}")
