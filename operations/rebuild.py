"""`rebuild`: project the event log into fresh collections while the old ones keep serving,
then switch every reader and writer to them with one registry write.

1. Replay the whole events table into new collections (`accounts__r<time>`, …), in batches,
   through the same planner as the live projector.
2. Catch up: replay again from a little before where the last pass ended (positions can
   commit slightly out of order; the version guards make the overlap harmless) until the
   tail is short.
3. Switch the registry. The query service and the projector re-read it within a second.
4. Once they have, catch up once more into the switched collections from before where the
   last pass ended: an event the live projector wrote into the old collections just before
   it followed the switch is in the events table too, so nothing that arrived during the
   rebuild is lost. (The live projector writes the same collections by now; every write is
   guarded by the revision it read, so the two never overwrite each other.)
5. Drop what no longer serves. `verify` afterwards compares the result with the write model.

All views are rebuilt and switched together, as one consistent set: the dependent views
(transactions, statistics, the customer's account entries) are written only when the account
view takes an event, so a dependent view switched alone would miss the events its old primary
had already taken. An event that fails to project, or a gap that never fills, stops the
rebuild before the switch: the serving views are never replaced by incomplete ones.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase
from sqlalchemy.ext.asyncio import AsyncEngine

from command_service.event_log import count_events, last_position, read_events
from projector.store import ReadStore, project_with_retries
from shared.envelope import EventEnvelope
from shared.readmodel import (
    REGISTRY_TTL_S,
    VIEWS,
    ViewDatabase,
    ensure_indexes,
    read_registry,
    switch_views,
)
from shared.upcasting import UnreadableEvent

CATCH_UP_OVERLAP = 1000  # positions re-read at each catch-up pass
SETTLE_S = 2 * REGISTRY_TTL_S + 0.5  # until every process has followed the switch


class RebuildIncomplete(Exception):
    """Some events could not be projected; the fresh collections were dropped."""


@dataclass
class RebuildReport:
    events: int
    switched: dict[str, str]
    seconds: float


Progress = Callable[[int], None]  # called with the number of events just projected


async def replay(engine: AsyncEngine, store: ReadStore, after: int,
                  progress: Progress | None = None) -> tuple[int, int]:
    """Project every event above `after`, up to the last one stored when it starts (a pass
    under a write load faster than the rebuild would never end); returns (events projected,
    last position seen). Raises RebuildIncomplete when an event fails or a gap is still open
    at the end."""
    held: list[EventEnvelope] = []
    seen, last = 0, after
    end = await last_position(engine)
    async for batch in read_events(engine, after_position=after, up_to_position=end):
        plan = await project_with_retries(store, held + batch)
        if plan.failed:
            event, error = plan.failed[0]
            raise RebuildIncomplete(f"{event.event_type} v{event.version} of "
                                    f"{event.aggregate_id} cannot be projected: {error}")
        held = plan.held  # a version whose predecessor commits later: retried with the next
        seen += len(batch)
        last = batch[-1].position
        if progress:
            progress(len(batch))
    if held and (await project_with_retries(store, held)).held:
        raise RebuildIncomplete(f"{len(held)} event(s) wait for versions missing from the log, "
                                f"e.g. v{held[0].version} of {held[0].aggregate_id}")
    return seen, last


async def rebuild(engine: AsyncEngine, db: AsyncDatabase, progress: Progress | None = None,
                  on_total: Callable[[int], None] | None = None) -> RebuildReport:
    started = time.monotonic()
    tag = time.strftime("r%Y%m%d%H%M%S")
    fresh = {view: f"{view}__{tag}" for view in VIEWS}
    await ensure_indexes(db, fresh)
    store = ReadStore(ViewDatabase(db, fixed=fresh))

    if on_total:
        on_total(await count_events(engine))
    try:
        total, last = await replay(engine, store, 0, progress)
        for _ in range(10):  # catch up with what was written meanwhile
            _, last = await replay(engine, store, max(0, last - CATCH_UP_OVERLAP))
            if await last_position(engine) - last < CATCH_UP_OVERLAP:
                break
    except (RebuildIncomplete, UnreadableEvent):  # nothing switched: leave nothing behind
        for collection in fresh.values():
            await db.drop_collection(collection)
        raise

    old = await read_registry(db)
    switched = dict(fresh)
    await switch_views(db, switched)
    await asyncio.sleep(SETTLE_S)

    await replay(engine, ReadStore(ViewDatabase(db)), max(0, last - CATCH_UP_OVERLAP))

    for view in VIEWS:
        await db.drop_collection(old[view])
    return RebuildReport(total, switched, time.monotonic() - started)
