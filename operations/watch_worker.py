"""`cqrs-accounts verify --watch` as a process: like the relay and the projector (shared/worker
.py), its own /healthz, /readyz and /metrics port, and a clean stop on SIGTERM (between passes,
or abandoning a pass: its checkpoint only moves once a pass has ended)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from command_service.db.engine import create_engine, ping
from operations.watch import Watcher
from operations.watch_feed import ChangeFeed
from shared.config import Settings
from shared.readmodel import ViewDatabase, make_mongo_client
from shared.stopping import sleep_unless_stopped
from shared.worker import run_worker, stop_on_signals

log = logging.getLogger(__name__)


async def serve_verify_watch(settings: Settings, host: str, port: int,
                             stop: asyncio.Event | None = None, repair: bool = False) -> None:
    stop = stop or stop_on_signals()
    engine = create_engine(settings)
    client = make_mongo_client(settings)
    db = client[settings.mongo_database]

    async def read_store_answers() -> None:
        await db.command("ping")

    async def start() -> Watcher:
        feed = ChangeFeed(engine, db)
        position = await feed.load()
        log.info("verify --watch from event log position %d, every %ss%s", position,
                 settings.verify_interval_s, " (repairing)" if repair else "")
        return Watcher(engine, ViewDatabase(db), feed, settings.verify_settle_s, repair)

    async def work(watcher: Watcher) -> None:
        while not stop.is_set():
            try:
                report = await _until_stopped(watcher.run_pass(), stop)
            except Exception:  # a dependency away for a moment: the next pass tries again
                log.exception("verify pass failed; trying again in %ss",
                              settings.verify_interval_s)
            else:
                if report is not None:
                    log.info("verify pass: %d aggregate(s) checked, %d behind, %d difference(s)",
                             report.checked, report.behind, len(report.drift))
            await sleep_unless_stopped(stop, settings.verify_interval_s)

    async def close(_: Watcher | None) -> None:
        await client.close()
        await engine.dispose()

    await run_worker("verify", {"database": lambda: ping(engine),
                                "read_store": read_store_answers},
                     host, port, stop, start=start, work=work, close=close)


async def _until_stopped(pass_, stop: asyncio.Event):
    """The pass's report, or None when `stop` came first (the pass is cancelled)."""
    running = asyncio.ensure_future(pass_)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if running.done():
        return running.result()
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    return None
