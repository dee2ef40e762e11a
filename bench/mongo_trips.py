"""Counts every command any MongoDB client of this process sends, per database: the read
store's round trips seen on the wire (a `find` that needs a `getMore` counts twice), whatever
the projector's own counter says. Registered at import, so import this module before the
clients are made."""

from __future__ import annotations

from collections import Counter

from pymongo import monitoring

_IGNORED = {"hello", "ismaster", "isMaster", "ping", "endSessions", "buildInfo",
            "buildinfo", "listCollections", "createIndexes"}


class _RoundTrips(monitoring.CommandListener):
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in _IGNORED:
            self.counts[(event.database_name, event.command_name)] += 1

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass

    def of(self, database: str) -> dict[str, int]:
        return {name: n for (db, name), n in self.counts.items() if db == database}


ROUND_TRIPS = _RoundTrips()
monitoring.register(ROUND_TRIPS)
