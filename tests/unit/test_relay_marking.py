"""Which published outbox rows the relay may mark sent (guarantees 1 and 3): pure logic."""

from command_service.outbox.rows import OutboxRow, acknowledged_ids


def row(row_id: int, key: str) -> OutboxRow:
    return OutboxRow(row_id, "t", key, "{}", "{}")


def test_every_acknowledged_row_is_marked():
    rows = [row(1, "a"), row(2, "b"), row(3, "a")]
    assert acknowledged_ids(rows, [None, None, None], set()) == [1, 2, 3]


def test_a_refused_row_holds_back_the_later_rows_of_its_key_but_not_other_keys():
    rows = [row(1, "a"), row(2, "b"), row(3, "a"), row(4, "b"), row(5, "c")]
    failed: set[str] = set()
    marked = acknowledged_ids(rows, [None, TimeoutError(), None, None, None], failed)
    # b's row 4 got through after row 2 was refused: it is sent again after row 2.
    assert marked == [1, 3, 5]
    assert failed == {"b"}


def test_a_key_refused_in_an_earlier_batch_of_the_run_stays_held_back():
    failed = {"a"}
    assert acknowledged_ids([row(7, "a"), row(8, "b")], [None, None], failed) == [8]


def test_a_row_acknowledged_before_its_key_is_refused_is_marked():
    rows = [row(1, "a"), row(2, "a")]
    failed: set[str] = set()
    assert acknowledged_ids(rows, [None, ConnectionError()], failed) == [1]
    assert failed == {"a"}
