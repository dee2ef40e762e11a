"""A pytest plugin: which broker × write-store pairs each integration test runs on.

A test that needs both a broker and a write store would run on every pair of the cross
(tansu-sqlite, tansu-mysql, kafka-sqlite, kafka-mysql), though most of them test something the
pair does not change. By default each runs on the pairs that cover every backend once: the
embedded one (Tansu + SQLite, what `make dev` runs) and the production one (Kafka + MySQL).

A test whose subject *is* how the backends differ (a broker killed or wiped, offsets and lag,
MySQL's or SQLite's locking, deadlocks and disconnects, migrations, a store's errors translated)
says so with `@pytest.mark.every_pair("why")` and keeps the whole cross. CQRS_TEST_PAIRS=all
brings the whole cross back for every test; CQRS_TEST_PAIRS=tansu-sqlite,kafka-sqlite (any
list) runs exactly those pairs.
"""

from __future__ import annotations

import os

import pytest

from tests.support.backends import BROKER_KINDS, WRITE_BACKENDS, backend_params

MARKER = "every_pair"


def default_pairs(brokers: list[str], stores: list[str]) -> set[tuple[str, str]]:
    """Each broker beside the write store at the same place in its list, the shorter list
    starting over, so that every backend is in at least one pair: [tansu, kafka] × [sqlite,
    mysql] gives tansu-sqlite and kafka-mysql; without MySQL, tansu-sqlite and kafka-sqlite."""
    if not brokers or not stores:
        return set()
    return {(brokers[i % len(brokers)], stores[i % len(stores)])
            for i in range(max(len(brokers), len(stores)))}


def chosen_pairs(setting: str) -> set[tuple[str, str]] | None:
    """The pairs CQRS_TEST_PAIRS asks for; None for the whole cross."""
    if setting == "all":
        return None
    if not setting or setting == "default":
        return default_pairs(BROKER_KINDS, WRITE_BACKENDS)
    pairs = set()
    for name in (part.strip() for part in setting.split(",") if part.strip()):
        broker, _, store = name.partition("-")
        if broker not in ("tansu", "kafka") or store not in ("sqlite", "mysql"):
            raise pytest.UsageError(f"CQRS_TEST_PAIRS: {name!r} is not a pair such as "
                                    "tansu-sqlite or kafka-mysql, nor 'all' or 'default'")
        pairs.add((broker, store))
    return pairs


def pair_of(item: pytest.Item) -> tuple[str, str] | None:
    """The (broker, write store) an item runs on, when it runs on both."""
    params = backend_params(item)
    if len(params) == 2:
        return params["broker"], params["database_url"]
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(why): the test is about how the backends differ, so it runs on "
        "every broker × write-store pair, not only the default ones")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    setting = os.environ.get("CQRS_TEST_PAIRS", "").strip()
    wanted = chosen_pairs(setting)
    if wanted is None:
        return
    marker_widens = setting in ("", "default")  # a list of pairs is obeyed by every test

    def runs(item: pytest.Item) -> bool:
        pair = pair_of(item)
        return pair is None or pair in wanted or bool(
            marker_widens and item.get_closest_marker(MARKER))

    drop = [item for item in items if not runs(item)]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if runs(item)]
