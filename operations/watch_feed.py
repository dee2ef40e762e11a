"""What `verify --watch` has to look at next: the customers whose aggregates changed since its
checkpoint, and those a pass left to look at again.

The checkpoint is a position of the event log, kept in the read store (collection
`verify_watch`) so a restarted watcher resumes where the last one stopped. On MySQL a
transaction can commit after one that took a higher AUTO_INCREMENT position (guarantee 2 of
docs/design.md): a position missing below the checkpoint is kept as a gap and read again on
the next passes, until its event appears or GAP_PATIENCE_S has passed (then its transaction was
rolled back and the position is never used). Customers to look at again (their views were
behind, or drifting) are one document each in `verify_recheck`: however many pile up while a
projector is stopped, no document grows past the store's size limit.
"""

from __future__ import annotations

import time

from pymongo import DeleteOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from sqlalchemy.ext.asyncio import AsyncEngine

from command_service.event_log import changes, events_at, last_position
from command_service.state_reads import owners_of

CHECKPOINTS = "verify_watch"
RECHECKS = "verify_recheck"
GAP_PATIENCE_S = 300.0  # far longer than any transaction of the command service stays open
MAX_GAPS = 1_000  # what `events_at` reads again in one query
MAX_EVENTS_PER_PASS = 100_000  # a watcher far behind catches up over several passes


class ChangeFeed:
    def __init__(self, engine: AsyncEngine, db: AsyncDatabase) -> None:
        self._engine, self._db = engine, db
        self.position: int | None = None
        self._gaps: dict[int, float] = {}  # position -> when it was first seen missing

    async def load(self) -> int:
        """The stored checkpoint; a watcher that has none starts at the log's end (what came
        before is the whole-log `verify`'s job, not a first pass's)."""
        doc = await self._db[CHECKPOINTS].find_one({"_id": "checkpoint"})
        if doc is None:
            self.position = await last_position(self._engine)
        else:
            self.position = doc["position"]
            self._gaps = {int(p): seen for p, seen in doc.get("gaps", [])}
        return self.position

    async def changed_customers(self) -> tuple[set[str], int]:
        """The customers whose aggregates (themselves or their accounts) changed after the
        checkpoint or in a gap that has filled, and the position this covers up to."""
        up_to = min(await last_position(self._engine), self.position + MAX_EVENTS_PER_PASS)
        seen = await changes(self._engine, self.position, up_to)
        filled = await events_at(self._engine, sorted(self._gaps))
        now = time.time()
        for position, *_ in filled:
            self._gaps.pop(position, None)
        present = {position for position, *_ in seen}
        for position in range(self.position + 1, up_to + 1):
            if position not in present:
                self._gaps.setdefault(position, now)
        self._gaps = dict(sorted((p, t) for p, t in self._gaps.items()
                                 if now - t < GAP_PATIENCE_S)[-MAX_GAPS:])
        customers = {aggregate for _, kind, aggregate in seen + filled if kind == "customer"}
        accounts = [aggregate for _, kind, aggregate in seen + filled if kind == "account"]
        customers |= set((await owners_of(self._engine, sorted(set(accounts)))).values())
        return customers, up_to

    async def advance(self, up_to: int) -> None:
        self.position = up_to
        await self._db[CHECKPOINTS].update_one(
            {"_id": "checkpoint"},
            {"$set": {"position": up_to, "gaps": [[p, t] for p, t in self._gaps.items()]}},
            upsert=True)

    async def rechecks(self) -> dict[str, str]:
        """Customer id -> why it is looked at again ("behind" or "drift")."""
        return {doc["_id"]: doc["reason"] async for doc in self._db[RECHECKS].find({})}

    async def set_rechecks(self, reasons: dict[str, str | None]) -> None:
        """Record each customer's reason to be looked at again; None: no reason any more."""
        writes = [DeleteOne({"_id": c}) if reason is None else
                  UpdateOne({"_id": c}, {"$set": {"reason": reason}}, upsert=True)
                  for c, reason in sorted(reasons.items())]
        if writes:
            await self._db[RECHECKS].bulk_write(writes, ordered=False)
