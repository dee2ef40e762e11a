"""The suite's pairing of brokers with write stores (tests/support/pairs.py): every backend is
in a default pair, and CQRS_TEST_PAIRS is read strictly; and its order (tests/support/order.py):
slow tests first, without breaking the grouping by broker."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.support.order import slow_first
from tests.support.pairs import chosen_pairs, default_pairs


def test_the_default_pairs_are_the_embedded_one_and_the_production_one():
    assert default_pairs(["tansu", "kafka"], ["sqlite", "mysql"]) == {
        ("tansu", "sqlite"), ("kafka", "mysql")}


@pytest.mark.parametrize("brokers,stores,expected", [
    (["tansu", "kafka"], ["sqlite"], {("tansu", "sqlite"), ("kafka", "sqlite")}),  # no MySQL
    (["tansu"], ["sqlite", "mysql"], {("tansu", "sqlite"), ("tansu", "mysql")}),  # no Java
    (["tansu"], ["sqlite"], {("tansu", "sqlite")}),
    ([], ["sqlite"], set()),
])
def test_every_backend_at_hand_is_in_a_default_pair(brokers, stores, expected):
    assert default_pairs(brokers, stores) == expected


def test_all_asks_for_the_whole_cross_and_a_list_for_exactly_its_pairs():
    assert chosen_pairs("all") is None
    assert chosen_pairs("tansu-mysql, kafka-sqlite") == {("tansu", "mysql"), ("kafka", "sqlite")}


@pytest.mark.parametrize("setting", ["mysql-kafka", "tansu", "tansu-postgres", "everything"])
def test_a_pair_it_does_not_know_is_a_usage_error_naming_it(setting):
    with pytest.raises(pytest.UsageError, match="CQRS_TEST_PAIRS"):
        chosen_pairs(setting)


def _item(name: str, broker: str | None = None, slow: bool = False):
    params = {"broker": broker} if broker else {}
    return SimpleNamespace(name=name, callspec=SimpleNamespace(params=params),
                           get_closest_marker=lambda marker: slow and marker == "slow" or None)


def test_slow_tests_start_first_and_each_broker_s_tests_stay_together():
    items = [_item("t1", "tansu"), _item("n1"), _item("t2", "tansu", slow=True),
             _item("k1", "kafka"), _item("n2", slow=True), _item("k2", "kafka", slow=True)]
    slow_first(items)
    assert [item.name for item in items] == ["n2", "n1", "t2", "t1", "k2", "k1"]
