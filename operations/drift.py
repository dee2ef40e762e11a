"""What `verify` reports: one difference between the write model and a read model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Drift:
    view: str
    doc_id: str
    field: str
    expected: Any
    actual: Any
    customer_id: str | None  # what `--repair` re-projects


    @property
    def aggregate_id(self) -> str | None:
        """The aggregate whose documents differ: an entry's own, a day's customer's."""
        if self.view == "history":
            return self.doc_id.rsplit("|", 1)[0]
        if self.view == "daily_stats":
            return self.customer_id
        return self.doc_id  # accounts, customers, and transactions by account


def same_moment(stored: datetime | None, folded: datetime | None) -> bool:
    """The read store keeps milliseconds (BSON dates); the event log, microseconds."""
    if stored is None or folded is None:
        return stored is folded
    return abs((stored - folded).total_seconds()) < 0.001
