"""The leader lease: one relay publishes at a time (per-aggregate order needs a single
publisher), the others stand by and take over once the leader's lease expires.

A row in `relay_lease` that the leader renews works the same on MySQL and SQLite. A relay that
stalls past its lease may publish a batch a new leader also publishes: duplicates only, which
the read side's version guards ignore."""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from command_service.db.engine import read_only
from command_service.db.tables import relay_lease, utc_now

LEASE_NAME = "outbox-relay"


class LeaderLease:
    """The lease row one relay renews; a standby takes it once it expires."""

    def __init__(self, engine: AsyncEngine, lease_s: float, holder: str | None = None) -> None:
        self._engine = engine
        self._lease = timedelta(seconds=lease_s)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._valid_until = 0.0  # monotonic deadline for renewing

    @property
    def renew_interval_s(self) -> float:
        return self._lease.total_seconds() / 3

    async def hold(self) -> bool:
        """True while we are the leader; renews the lease when a third of it has passed."""
        if time.monotonic() < self._valid_until:
            return True
        now = utc_now()
        async with self._engine.begin() as conn:
            taken = await conn.execute(
                relay_lease.update()
                .where(relay_lease.c.name == LEASE_NAME,
                       sa.or_(relay_lease.c.holder == self.holder,
                              relay_lease.c.expires_at < now))
                .values(holder=self.holder, expires_at=now + self._lease)
            )
        if taken.rowcount != 1:
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(relay_lease.insert().values(
                        name=LEASE_NAME, holder=self.holder, expires_at=now + self._lease))
            except IntegrityError:
                self._valid_until = 0.0
                return False
        self._valid_until = time.monotonic() + self.renew_interval_s
        return True

    async def release(self) -> None:
        self._valid_until = 0.0
        async with self._engine.begin() as conn:
            await conn.execute(relay_lease.delete().where(
                relay_lease.c.name == LEASE_NAME, relay_lease.c.holder == self.holder))

    async def current_holder(self) -> str | None:
        """The relay whose lease has not expired, if any."""
        lease = await current_lease(self._engine)
        return lease[0] if lease and lease[1] >= utc_now() else None


async def current_lease(engine: AsyncEngine) -> tuple[str, datetime] | None:
    """Who holds the lease and until when (expired or not), for `status`."""
    async with read_only(engine).connect() as conn:
        row = (await conn.execute(sa.select(relay_lease.c.holder, relay_lease.c.expires_at)
                                  .where(relay_lease.c.name == LEASE_NAME))).first()
    return (row.holder, row.expires_at) if row else None
