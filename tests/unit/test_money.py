"""Money is integer minor units, parsed from and printed as decimal strings (docs/api.md: greater
than 0, at most 2 fractional digits, at most "1000000000.00"), never through a float."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.money import MAX_AMOUNT_MINOR, Currency, InvalidAmount, format_minor, parse_amount


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("12.5", 1250),
        ("12.50", 1250),
        ("12", 1200),
        ("0.01", 1),
        ("0.1", 10),
        ("0.10", 10),
        ("0.99", 99),
        ("1", 100),
        ("999999999.99", 99_999_999_999),
        ("1000000000", 100_000_000_000),
        ("1000000000.00", 100_000_000_000),
    ],
)
def test_a_decimal_string_of_at_most_two_fraction_digits_parses_to_minor_units(text, minor):
    assert parse_amount(text) == minor


def test_the_largest_amount_is_exactly_the_maximum():
    assert parse_amount("1000000000.00") == MAX_AMOUNT_MINOR == 100_000_000_000


@pytest.mark.parametrize("value", [12.5, 12, 0, 1250, True, None, Decimal("12.50"), b"12.50",
                                   ["12.50"]])
def test_anything_but_a_string_is_refused_even_when_it_looks_like_money(value):
    with pytest.raises(InvalidAmount):
        parse_amount(value)


@pytest.mark.parametrize(
    "text",
    [
        "0", "0.00", "0.0", "00.00",  # zero is not an amount
        "-1", "-0.01", "+1",  # signs
        "1.234", "0.001",  # more than 2 fractional digits
        "1e3", "1E3", "inf", "nan", "NaN", "Infinity",  # float spellings
        " 1", "1 ", "\t1", "1\t",  # surrounding whitespace
        "01.00", "007", "00",  # leading zeros
        "1000000000.01", "9999999999.99", "10000000000", "10000000000.00",  # above the maximum
        "", ".", ".5", "1.", "1..0", "1.0.0",  # incomplete
        "1,00", "1_000", "1 000", "12,50",  # separators
        "abc", "12.5a", "$12.50", "12.50 USD",
        "\u0661\u0662",  # Arabic-Indic digits are digits to str.isdigit, not to money
        "\uff11\uff12",  # full-width digits
    ],
)
def test_malformed_zero_negative_or_too_large_amounts_are_refused(text):
    with pytest.raises(InvalidAmount):
        parse_amount(text)


@pytest.mark.parametrize("text", ["12.50\n", "1\n", "0.01\n"])
def test_a_trailing_newline_is_not_part_of_a_money_string(text):
    # A JSON body can carry "12.50\n"; it is not a decimal string in the contract's format.
    with pytest.raises(InvalidAmount):
        parse_amount(text)


def test_refusals_are_value_errors_with_a_readable_message():
    with pytest.raises(ValueError, match="greater than 0"):
        parse_amount("0.00")
    with pytest.raises(ValueError, match="at most 1000000000.00"):
        parse_amount("1000000000.01")
    with pytest.raises(ValueError, match="2 fractional digits"):
        parse_amount("1.234")


@pytest.mark.parametrize(
    ("minor", "text"),
    [
        (0, "0.00"),
        (1, "0.01"),
        (10, "0.10"),
        (99, "0.99"),
        (100, "1.00"),
        (1250, "12.50"),
        (123_456, "1234.56"),
        (MAX_AMOUNT_MINOR, "1000000000.00"),
        (10 * MAX_AMOUNT_MINOR, "10000000000.00"),  # a balance may exceed one amount's maximum
        (-5, "-0.05"),
        (-1250, "-12.50"),
    ],
)
def test_minor_units_print_with_exactly_two_decimals(minor, text):
    assert format_minor(minor) == text


@pytest.mark.parametrize(
    "minor", [1, 9, 10, 11, 99, 100, 101, 1250, 123_456, 99_999_999_999, MAX_AMOUNT_MINOR]
)
def test_format_then_parse_round_trips_every_valid_amount(minor):
    assert parse_amount(format_minor(minor)) == minor


@pytest.mark.parametrize("text", ["0.01", "12.50", "999999999.99", "1000000000.00"])
def test_parse_then_format_round_trips_a_canonical_string(text):
    assert format_minor(parse_amount(text)) == text


def test_format_never_goes_through_a_float():
    # 0.1 + 0.2 style errors would show up at the last digit of large balances.
    assert format_minor(2**53 + 1) == "90071992547409.93"


def test_the_contract_currencies_are_exactly_usd_eur_gbp_inr():
    assert {c.value for c in Currency} == {"USD", "EUR", "GBP", "INR"}
    assert Currency("EUR") == "EUR"
    with pytest.raises(ValueError):
        Currency("JPY")
