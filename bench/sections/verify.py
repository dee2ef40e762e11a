"""8. Continuous verification: the time of one `verify --watch` pass over a fixed set of changed
accounts (`verify_changed_accounts`, five events each), after each history size of
`verify_histories` (other customers' events); it must not grow with the history. Beside it,
the whole-log `verify` on the same data, which must.

Per size: a fresh write model and read-model database; the history built in bulk
(bench/verify_history.py: the command service's event rows, the projector planner's
documents; not measured beyond its build time); then the changed customers' events written
after it and projected the projector's own way (its store's load, plan and guarded writes);
the watcher's checkpoint set where they begin; one pass timed, then the whole-log check.
"""

from __future__ import annotations

import time
from dataclasses import replace

from bench.context import Context
from bench.verify_history import build_history, project_log, write_log
from bench.workload import bank_events
from command_service.db.engine import create_engine
from command_service.domain.events import CustomerRegistered
from operations.verify import find_drift
from operations.watch import Watcher
from operations.watch_feed import CHECKPOINTS, ChangeFeed
from shared.readmodel import ViewDatabase, make_mongo_client

EVENTS_PER_CHANGED_ACCOUNT = 5
HISTORY_EVENTS_PER_ACCOUNT = 50


def changed_customers(n_accounts: int):
    """Customers of their own (another seed), two accounts each, with a few events per
    account; their e-mail addresses must not collide with the history's."""
    for event in bank_events(EVENTS_PER_CHANGED_ACCOUNT * n_accounts, n_accounts, seed=2):
        yield (replace(event, email=f"changed-{event.email}")
               if isinstance(event, CustomerRegistered) else event)


async def measure(ctx: Context, history: int) -> dict:
    database = await ctx.backends.new_write_database("verify")
    # A socket timeout of 15 minutes (3×): one index over a million documents takes
    # SecantusDB minutes to build, and the whole-log check reads them all.
    settings = ctx.backends.settings(database, "verify", mongo_timeout_ms=300_000)
    engine, client = create_engine(settings), make_mongo_client(settings)
    db = client[settings.mongo_database]
    try:
        ctx.say(f"verify: building {history:,} events of history in bulk")
        built = await build_history(
            engine, db, bank_events(history, max(2, history // HISTORY_EVENTS_PER_ACCOUNT)))
        checkpoint = built.last_position
        last = await write_log(engine, changed_customers(ctx.sizes.verify_changed_accounts),
                               checkpoint)
        started = time.monotonic()
        await project_log(engine, db, after=checkpoint)
        projected_s = time.monotonic() - started
        await db[CHECKPOINTS].replace_one({"_id": "checkpoint"}, {"position": checkpoint},
                                          upsert=True)
        feed = ChangeFeed(engine, db)
        await feed.load()
        views = ViewDatabase(db)
        ctx.say(f"verify: history built in {built.seconds:.0f} s; one watch pass")
        started = time.monotonic()
        report = await Watcher(engine, views, feed, settle_s=0).run_pass()
        pass_s = time.monotonic() - started
        started = time.monotonic()
        whole = await find_drift(engine, views)
        whole_s = time.monotonic() - started
        return {"history_events": built.events, "events_in_log": last,
                "changed_events": last - checkpoint, "checked_aggregates": report.checked,
                "behind": report.behind, "drift": len(report.drift),
                "pass_s": round(pass_s, 2), "whole_log_verify_s": round(whole_s, 2),
                "whole_log_drift": len(whole), "history_build_s": built.seconds,
                "history_index_s": built.index_seconds,
                "changed_events_projected_s": round(projected_s, 1)}
    finally:
        await client.drop_database(settings.mongo_database)
        await client.close()
        await engine.dispose()
        await ctx.backends.drop_write_database(database)


async def run(ctx: Context) -> dict:
    by_size = []
    for history in ctx.sizes.verify_histories:
        by_size.append(await measure(ctx, history))
        ctx.say(f"verify: {by_size[-1]}")
    first, last = by_size[0], by_size[-1]
    return {"changed_accounts": ctx.sizes.verify_changed_accounts, "by_size": by_size,
            "pass_growth": round(last["pass_s"] / first["pass_s"], 2) if first["pass_s"]
            else None}
