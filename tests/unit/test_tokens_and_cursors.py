"""Opaque strings the services hand out: the read-your-writes token (shared/consistency.py)
and the keyset paging cursor (shared/cursors.py). Anything a client sends back that the
service did not issue is a clean refusal (InvalidToken / 422), never a crash."""

from __future__ import annotations

import base64
import json
import re

import pytest

from shared.consistency import MAX_TOKEN_CHARS, InvalidToken, decode_token, encode_token
from shared.cursors import decode_cursor, encode_cursor
from shared.http import ApiError

URL_SAFE = re.compile(r"^[A-Za-z0-9_-]*$")
ACCOUNT = "7d3c0c3e-5b0f-4b8e-9a43-0f3c9a1d2e11"
CUSTOMER = "0b7e6c1a-0000-4000-8000-00000000000a"


def raw(obj) -> str:
    """What a client could forge: any JSON, encoded the way real tokens and cursors are."""
    text = obj if isinstance(obj, str) else json.dumps(obj)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# -- consistency tokens ----------------------------------------------------------------------

@pytest.mark.parametrize(
    "versions",
    [
        {},
        {ACCOUNT: 1},
        {ACCOUNT: 7, CUSTOMER: 1},
        {"a": 0},
        {"ünïcødé-id": 3},
        {f"acc-{i}": i for i in range(50)},
        {ACCOUNT: 2**62},
    ],
)
def test_a_token_decodes_to_exactly_the_versions_it_was_made_from(versions):
    assert decode_token(encode_token(versions)) == versions


@pytest.mark.parametrize("n", range(1, 9))
def test_tokens_are_url_safe_and_unpadded_whatever_their_length(n):
    token = encode_token({"?" * n: 2**40 - n, "~>" * n: n})
    assert URL_SAFE.match(token)
    assert "=" not in token
    assert decode_token(token) == {"?" * n: 2**40 - n, "~>" * n: n}


def test_a_token_is_the_same_whatever_the_order_of_its_versions():
    assert encode_token({"a": 1, "b": 2}) == encode_token({"b": 2, "a": 1})


def test_a_padded_token_is_still_accepted():
    token = encode_token({ACCOUNT: 3})
    padded = token + "=" * (-len(token) % 4)
    assert decode_token(padded) == {ACCOUNT: 3}


@pytest.mark.parametrize(
    "token",
    [
        "", "garbage", "!!!!", "====", "%7B%7D", "not a token at all", "\u00e9\u00e8",
        "eyJh",  # a truncated real token: '{"a'
        raw("{"), raw("null"), raw('"text"'), raw("[]"), raw("[1, 2]"), raw("1"), raw("true"),
        base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),  # not UTF-8
    ],
)
def test_garbage_tokens_are_refused(token):
    with pytest.raises(InvalidToken):
        decode_token(token)


def test_a_tampered_token_is_refused():
    token = encode_token({ACCOUNT: 3})
    tampered = "A" + token[1:]  # the first byte is no longer '{'
    assert tampered != token
    with pytest.raises(InvalidToken):
        decode_token(tampered)
    with pytest.raises(InvalidToken):
        decode_token(token[:-3])  # cut short


@pytest.mark.parametrize(
    "versions",
    [
        {ACCOUNT: -1},
        {ACCOUNT: 1, CUSTOMER: -5},
        {ACCOUNT: 1.0},
        {ACCOUNT: 1.5},
        {ACCOUNT: "3"},
        {ACCOUNT: None},
        {ACCOUNT: True},
        {ACCOUNT: False},
        {ACCOUNT: [1]},
        {ACCOUNT: {"v": 1}},
    ],
)
def test_versions_must_be_non_negative_integers_and_not_booleans(versions):
    with pytest.raises(InvalidToken):
        decode_token(raw(versions))


def test_an_overlong_token_is_refused_before_decoding():
    token = encode_token({f"acc-{i:05d}": i for i in range(400)})
    assert len(token) > MAX_TOKEN_CHARS
    with pytest.raises(InvalidToken, match="too long"):
        decode_token(token)


def test_deeply_nested_json_in_a_token_is_refused_not_a_crash():
    # Fits under MAX_TOKEN_CHARS but nests deeper than the JSON parser's recursion limit.
    token = raw("[" * 2_900)
    assert len(token) <= MAX_TOKEN_CHARS
    with pytest.raises(InvalidToken):
        decode_token(token)


def test_an_invalid_token_is_a_value_error_with_a_sentence():
    with pytest.raises(ValueError, match="not one this service issued"):
        decode_token("garbage")


# -- paging cursors --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("position", "required"),
    [
        ({"before": 42}, {"before": int}),
        ({"before": 0}, {"before": int}),
        ({"after": CUSTOMER}, {"after": str}),
        ({"after": "ü/+?&="}, {"after": str}),
        ({"at": "2026-03-01T09:00:00Z", "before": 3}, {"at": str, "before": int}),
    ],
)
def test_a_cursor_decodes_to_the_position_it_was_made_from(position, required):
    cursor = encode_cursor(position)
    assert URL_SAFE.match(cursor)
    assert decode_cursor(cursor, required) == position


def _assert_refused(cursor: str, required: dict) -> ApiError:
    with pytest.raises(ApiError) as refused:
        decode_cursor(cursor, required)
    error = refused.value
    assert error.status == 422
    assert error.code == "validation_error"
    assert error.details == [{"field": "cursor", "message": "not a cursor this service issued"}]
    return error


@pytest.mark.parametrize(
    "cursor",
    [
        "", "garbage", "!!!!", "\u00e9", "eyJi",  # truncated '{"b'
        raw("{"), raw("[]"), raw("null"), raw("42"), raw('"before"'),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_a_garbage_cursor_is_a_422_in_the_contract_format(cursor):
    _assert_refused(cursor, {"before": int})


@pytest.mark.parametrize(
    ("position", "required"),
    [
        ({}, {"before": int}),
        ({"after": 3}, {"before": int}),  # another endpoint's cursor
        ({"before": "3"}, {"before": int}),
        ({"before": 3.0}, {"before": int}),
        ({"before": True}, {"before": int}),
        ({"before": None}, {"before": int}),
        ({"before": 2**63}, {"before": int}),  # more than the read store compares
        ({"before": -(2**63) - 1}, {"before": int}),
        ({"after": 7}, {"after": str}),
        ({"after": None}, {"after": str}),
        ({"after": ["x"]}, {"after": str}),
    ],
)
def test_a_cursor_of_the_wrong_shape_is_a_422(position, required):
    _assert_refused(raw(position), required)


def test_a_tampered_cursor_is_a_422():
    cursor = encode_cursor({"before": 12})
    _assert_refused("A" + cursor[1:], {"before": int})


def test_a_deeply_nested_cursor_of_the_accepted_length_is_a_422():
    cursor = raw("[" * 380)
    assert len(cursor) <= 512  # the routers' max_length for `cursor`
    _assert_refused(cursor, {"before": int})
