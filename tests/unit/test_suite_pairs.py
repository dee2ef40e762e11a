"""The suite's pairing of brokers with write stores (tests/support/pairs.py): every backend is
in a default pair, and CQRS_TEST_PAIRS is read strictly."""

from __future__ import annotations

import pytest

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
