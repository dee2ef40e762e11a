"""The MySQL write batch writes strings and datetimes into its SQL itself (faster than the
driver): the text must be exactly what the driver (asyncmy) would have written."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import asyncmy.converters as converters
from asyncmy.constants.SERVER_STATUS import SERVER_STATUS_NO_BACKSLASH_ESCAPES

from command_service.db.write_batch import literal


class Driver:
    """What `literal` reads of an asyncmy connection, with the driver's own escaping."""

    def __init__(self, server_status: int = 0) -> None:
        self.server_status = server_status
        self.asked: list[object] = []

    def literal(self, value: object) -> str:
        self.asked.append(value)
        if isinstance(value, str):
            if self.server_status & SERVER_STATUS_NO_BACKSLASH_ESCAPES:
                return "'" + value.replace("'", "''") + "'"
            return "'" + converters.escape_string(value) + "'"
        return converters.escape_item(value, "utf8mb4")


SPECIALS = "\\\0\n\r\032\"'%"


def test_strings_are_escaped_exactly_as_the_driver_escapes_them():
    rng = random.Random(17)
    alphabet = SPECIALS + "ab {}:,é€😀\t\\n"
    samples = ["", "plain", '{"a": "b\\"c"}', "it's", "\\'", "'\\", SPECIALS * 3,
               *("".join(rng.choice(alphabet) for _ in range(rng.randrange(60)))
                 for _ in range(2000))]
    driver = Driver()
    for text in samples:
        assert literal(driver, text) == "'" + converters.escape_string(text) + "'", repr(text)
    assert driver.asked == []  # all written here


def test_naive_datetimes_are_written_as_the_driver_writes_them():
    driver = Driver()
    for moment in (datetime(2026, 12, 3, 17, 4, 5, 123456), datetime(2026, 12, 3, 17, 4, 5),
                   datetime(2026, 1, 2, 3, 4, 5, 6), datetime(999, 1, 1), datetime.max):
        assert literal(driver, moment) == converters.escape_datetime(moment)
    assert driver.asked == []


def test_anything_else_is_left_to_the_driver():
    driver = Driver()
    aware = datetime(2026, 12, 3, tzinfo=UTC)
    for value in (None, 7, 2**62, aware, b"bytes"):
        assert literal(driver, value) == driver.literal(value)
    assert driver.asked.count(aware) == 2


def test_without_backslash_escapes_strings_are_left_to_the_driver():
    driver = Driver(server_status=SERVER_STATUS_NO_BACKSLASH_ESCAPES)
    assert literal(driver, "it's \\") == "'it''s \\'"
    assert driver.asked == ["it's \\"]
