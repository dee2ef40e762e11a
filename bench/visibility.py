"""The end-to-end bench's watcher of the read store (bench/sections/e2e.py): every command is
watched by one poller that asks the account view for all outstanding accounts at once every
10 ms, so watching costs the store at most ~100 small finds a second, however high the rate."""

from __future__ import annotations

import asyncio
import time

from shared.readmodel import ACCOUNTS

POLL_S = 0.01
POLL_IDS = 300


class Visibility:
    """Watches the account view for (account, version) pairs; records each one's lag."""

    def __init__(self, db) -> None:
        self._accounts = db[ACCOUNTS]
        self.pending: dict[str, list[tuple[int, float]]] = {}
        self.lags: list[float] = []
        self.polls = 0
        self._task: asyncio.Task | None = None

    def expect(self, account_id: str, version: int, since: float) -> None:
        self.pending.setdefault(account_id, []).append((version, since))

    @property
    def outstanding(self) -> int:
        return sum(len(v) for v in self.pending.values())

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            polled = time.perf_counter()
            if self.pending:
                ids = list(self.pending)[:POLL_IDS]
                docs = await self._accounts.find({"_id": {"$in": ids}},
                                                 {"version": 1}).to_list()
                now = time.perf_counter()
                self.polls += 1
                for doc in docs:
                    waiting = self.pending.get(doc["_id"], [])
                    left = [(v, t) for v, t in waiting if v > doc.get("version", 0)]
                    self.lags.extend(now - t for v, t in waiting if v <= doc.get("version", 0))
                    if left:
                        self.pending[doc["_id"]] = left
                    else:
                        self.pending.pop(doc["_id"], None)
            # a poll every POLL_S at most, however long the last find took
            await asyncio.sleep(max(0.0, POLL_S - (time.perf_counter() - polled)))

    async def drained(self, timeout_s: float) -> bool:
        deadline = time.perf_counter() + timeout_s
        while self.outstanding and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        return not self.outstanding
