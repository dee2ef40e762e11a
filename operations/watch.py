"""`verify --watch`: each pass checks only the customers whose aggregates changed since the
checkpoint (operations/watch_feed.py), plus those an earlier pass left to look at again, so it
costs what changed, not the history.

Lag is never reported as drift. A customer's scope is *behind* when one of its aggregates'
views is at a lower version than the write model (or missing) and the history entry of the
aggregate's latest event is missing too: the projector has not got there yet. A behind scope
is neither drift nor checked: it is looked at again on the next passes until it has caught up.
A difference in a scope that is not behind counts only if it is still there, unchanged, after
CQRS_VERIFY_SETTLE_S (the projector writes an event's documents in more than one write).
Drifting customers are looked at on every pass until they match (so the drift gauge, and the
alert on it, stay up until someone repairs them), or are repaired at once with `--repair`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from operations.drift import Drift
from operations.repair import repair
from operations.scope import Scope
from operations.verify import check_scope, still_there
from operations.watch_feed import ChangeFeed
from shared.readmodel import ACCOUNTS, CUSTOMERS, HISTORY, ViewDatabase

# Multiprocess modes (shared/metrics.py), should verify --watch ever share a metrics
# directory: each is a reading of the stores, so the latest of a live process is the answer.
DRIFT = Gauge("cqrs_verify_drift_aggregates",
              "Aggregates whose read models differ from the write model (not lag), last pass",
              multiprocess_mode="livemostrecent")
CHECKED = Counter("cqrs_verify_checked_aggregates_total",
                  "Aggregates compared with their read models by verify --watch")
BEHIND = Gauge("cqrs_verify_behind_aggregates",
               "Aggregates of scopes left for a later pass because their views trail (lag)",
               multiprocess_mode="livemostrecent")
LAST_PASS = Gauge("cqrs_verify_last_pass_timestamp_seconds",
                  "When the last verify --watch pass ended (Unix time)",
                  multiprocess_mode="max")
SCOPE_CUSTOMERS = 200  # customers per check: bounds memory and each `$in`

log = logging.getLogger(__name__)


@dataclass
class PassReport:
    checked: int = 0  # aggregates compared in scopes that were not behind
    behind: int = 0
    drift: list[Drift] = field(default_factory=list)
    repaired: int = 0


def behind_customers(drift: list[Drift]) -> set[str]:
    """The customers with an aggregate the projector has not caught up with (see above)."""
    missing = {d.doc_id for d in drift if d.view == HISTORY and d.field == "_id"
               and d.actual is None}
    return {d.customer_id for d in drift if d.view in (ACCOUNTS, CUSTOMERS)
            and d.field == "version" and (d.actual is None or d.actual < d.expected)
            and f"{d.doc_id}|{d.expected}" in missing}



class Watcher:
    def __init__(self, engine: AsyncEngine, views: ViewDatabase, feed: ChangeFeed,
                 settle_s: float, repair: bool = False) -> None:
        self._engine, self._views, self._feed = engine, views, feed
        self._settle_s, self._repair = settle_s, repair

    async def run_pass(self) -> PassReport:
        changed, up_to = await self._feed.changed_customers()
        earlier = await self._feed.rechecks()
        customers = sorted(changed | set(earlier))
        report, suspects, sizes = PassReport(), [], {}
        behind: set[str] = set()
        for i in range(0, len(customers), SCOPE_CUSTOMERS):
            drift, rows = await check_scope(self._engine, self._views,
                                            Scope.of(customers[i:i + SCOPE_CUSTOMERS]))
            for c in rows.scope.customer_ids:
                sizes[c] = 1 + sum(1 for a in rows.accounts.values() if a.customer_id == c)
            behind |= behind_customers(drift)
            suspects += [d for d in drift if d.customer_id not in behind]
        if suspects:  # a second look, at only these customers, after the settle time
            report.drift = await still_there(self._engine, self._views, suspects,
                                             self._settle_s, Scope.of(customers))
        drifting = {d.customer_id for d in report.drift}
        if self._repair and drifting:
            report.repaired = await repair(self._engine, self._views, drifting)
            report.drift, _ = await check_scope(self._engine, self._views, Scope.of(drifting))
            drifting = {d.customer_id for d in report.drift}
        report.checked = sum(n for c, n in sizes.items() if c not in behind)
        report.behind = sum(n for c, n in sizes.items() if c in behind)
        reasons = {c: "behind" if c in behind else "drift" if c in drifting else None
                   for c in sizes}
        # A reason to forget is written only for a customer that had one: no delete per
        # clean customer of every pass.
        await self._feed.set_rechecks({c: r for c, r in reasons.items()
                                       if r is not None or c in earlier})
        await self._feed.advance(up_to)
        self._publish(report)
        return report

    def _publish(self, report: PassReport) -> None:
        aggregates = {d.aggregate_id for d in report.drift}
        for d in report.drift[:50]:
            log.warning("drift in %s %s: %s is %r, the write model says %r (customer %s)",
                        d.view, d.doc_id, d.field, d.actual, d.expected, d.customer_id)
        if report.repaired:
            log.warning("repaired %d customer(s)", report.repaired)
        DRIFT.set(len(aggregates))
        CHECKED.inc(report.checked)
        BEHIND.set(report.behind)
        LAST_PASS.set(time.time())
