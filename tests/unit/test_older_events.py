"""Events of older schema versions read exactly as the current release's own events.

The fixture is what the release before schema versions published for the scenario of
tests/support/history.py; the same scenario driven through today's domain gives today's
events, with the same ids. Read through the upcasters, the old ones must plan the very same
documents (the integration tests do the same through rebuild and a real broker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from command_service.domain.events import PUBLISHED_EVENTS
from command_service.domain.past_events import PAST_PAYLOADS
from projector.planner import plan_batch
from shared.envelope import EventEnvelope
from shared.upcasting import READER
from tests.support.history import FROZEN_HISTORIES, drive, frozen_messages

histories = pytest.mark.parametrize("history", FROZEN_HISTORIES, ids=lambda path: path.stem)


def older_events(history: Path) -> list[EventEnvelope]:
    return [EventEnvelope.from_json(message) for message in frozen_messages(history)]


def test_the_scenario_holds_every_event_type_the_service_publishes():
    """So that freezing it before a change keeps an example of every type's older shape."""
    assert {e.event_type for e in drive().log} == {c.__name__ for c in PUBLISHED_EVENTS}


def test_every_version_no_longer_written_has_a_frozen_example():
    frozen = {(e.event_type, e.schema_version) for history in FROZEN_HISTORIES
              for e in older_events(history)}
    assert set(PAST_PAYLOADS) <= frozen


def current_prefix(older: list[EventEnvelope]) -> list[EventEnvelope]:
    """Today's events for the part of the scenario that the frozen release had."""
    return drive().log[:len(older)]


@histories
def test_a_frozen_history_is_the_current_scenario_in_older_shapes(history):
    """Same events, ids, versions and times: only schema versions and payload shapes differ,
    so the comparison below compares reading, not two different histories."""
    older = older_events(history)
    current = current_prefix(older)
    assert [(e.event_id, e.event_type, e.aggregate_id, e.version, e.occurred_at, e.position)
            for e in older] == [
        (e.event_id, e.event_type, e.aggregate_id, e.version, e.occurred_at, e.position)
        for e in current]
    assert any(o.schema_version < c.schema_version for o, c in zip(older, current, strict=True))


@histories
def test_an_older_history_plans_exactly_the_views_of_the_current_one(history):
    older = older_events(history)
    from_older = plan_batch([READER.read(e) for e in older], {}, {})
    from_current = plan_batch(current_prefix(older), {}, {})
    assert not from_older.failed and not from_older.held
    assert len(from_older.applied) == len(from_current.applied) == len(older)
    for view in ("accounts", "customers", "transactions", "daily_stats", "history"):
        assert getattr(from_older, view) == getattr(from_current, view), view
