"""A pytest plugin: the long tests start first, so that the two workers of `make test` finish
together instead of one waiting out a minute-long chaos test that came last.

A test that runs for tens of seconds (a whole stack in subprocesses, kill -9 chaos, a fuzzer,
the bench's smoke run) says so with `@pytest.mark.slow`. The order keeps pytest's grouping
by the session's broker (regrouping them would start and stop a broker per test): the tests
that need no broker come first, then each broker's tests, each group with its slow tests at
its head.
"""

from __future__ import annotations

import pytest

from tests.support.backends import backend_params

MARKER = "slow"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: the test runs for tens of seconds; it is started early")


def slow_first(items: list) -> None:
    """Sorts `items` in place: the tests without a broker, then each broker's in the order
    its first test came, each group's slow tests first, the rest in their own order."""
    groups: dict[str | None, int] = {None: 0}
    for item in items:
        groups.setdefault(backend_params(item).get("broker"), len(groups))
    items.sort(key=lambda item: (groups[backend_params(item).get("broker")],
                                 item.get_closest_marker(MARKER) is None))


@pytest.hookimpl(trylast=True)  # after pytest has grouped the tests by their session fixtures
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    slow_first(items)
