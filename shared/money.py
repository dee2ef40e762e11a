"""Money as integer minor units: parsed from and printed as decimal strings, never floats."""

from __future__ import annotations

import re
from enum import StrEnum

MAX_AMOUNT_MINOR = 1_000_000_000_00  # "1000000000.00"
_MONEY = re.compile(r"(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?")


class Currency(StrEnum):
    USD = "USD"
    EUR = "EUR"
    GBP = "GBP"
    INR = "INR"


class InvalidAmount(ValueError):
    pass


def parse_amount(text: str) -> int:
    """`"12.5"` -> 1250. Rejects anything but a positive amount of at most 2 decimals and 1e9."""
    if not isinstance(text, str):
        raise InvalidAmount("must be a decimal string such as \"12.50\"")
    match = _MONEY.fullmatch(text)  # fullmatch: no trailing newline slips through
    if match is None:
        raise InvalidAmount(
            "must be a decimal string with at most 2 fractional digits, e.g. \"12.50\"")
    whole, fraction = match.group(1), (match.group(2) or ".")[1:]
    minor = int(whole) * 100 + int(fraction.ljust(2, "0"))
    if minor <= 0:
        raise InvalidAmount("must be greater than 0")
    if minor > MAX_AMOUNT_MINOR:
        raise InvalidAmount("must be at most 1000000000.00")
    return minor


def format_minor(minor: int) -> str:
    """1250 -> "12.50"; balances are never negative, but print a sign correctly if one is."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole}.{cents:02d}"
