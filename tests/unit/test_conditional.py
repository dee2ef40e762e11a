"""Conditional reads without a server: If-None-Match matching (RFC 9110: `*`, lists, weak
comparison), the ETags of the views (their versions, not their bodies), the one rate-limit
refusal both services answer, and the CORS origins setting."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from query_service import etags
from query_service.app import create_app as create_query_app
from query_service.conditional import Conditional, none_match
from shared.auth import ANONYMOUS, READ, Principal
from shared.config import Settings
from shared.http import ApiError
from shared.ratelimit import TokenBucketLimiter, ensure_within_rate

TAG = '"0123abcd"'


@pytest.mark.parametrize("header", [TAG, f"W/{TAG}", f'"other", {TAG}', f'W/"a,b",{TAG}',
                                    f"  {TAG}  ", "*", " * "])
def test_if_none_match_names_the_tag(header):
    assert none_match(header, TAG)


@pytest.mark.parametrize("header", [None, "", '"other"', TAG[1:-1], f'"{TAG}"', "W/", "**",
                                    '"0123abc"', f"{TAG[:-1]}"])
def test_if_none_match_does_not_name_the_tag(header):
    assert not none_match(header, TAG)


def test_a_match_is_304_with_the_headers_and_no_body_and_a_miss_is_the_view():
    def never() -> dict:
        raise AssertionError("a 304 renders no view")

    hit = Conditional(TAG).answer(TAG, never)
    assert hit.status_code == 304 and hit.body == b""
    assert hit.headers["etag"] == TAG and hit.headers["cache-control"] == "private, no-cache"
    miss = Conditional('"else"').answer(TAG, lambda: {"a": 1})
    assert miss.status_code == 200 and miss.body == b'{"a":1}'
    assert miss.headers["etag"] == TAG and miss.headers["cache-control"] == "private, no-cache"


def account(version: int, balance: int = 0) -> dict:
    return {"_id": "acc", "version": version, "balance_minor": balance}


def test_an_etag_is_strong_and_follows_the_versions_not_the_body():
    tag = etags.account_etag(account(3))
    assert tag.startswith('"') and tag.endswith('"') and not tag.startswith("W/")
    assert etags.account_etag(account(3, balance=999)) == tag  # the version names the content
    assert etags.account_etag(account(4)) != tag


def test_a_customer_360_etag_follows_the_customer_and_each_account():
    doc = {"_id": "c", "version": 2, "accounts": [{"account_id": "a", "version": 1},
                                                  {"account_id": "b", "version": 5}]}
    tag = etags.customer_360_etag(doc)
    assert etags.customer_360_etag({**doc, "version": 3}) != tag
    moved = {**doc, "accounts": [{"account_id": "a", "version": 1},
                                 {"account_id": "b", "version": 6}]}
    assert etags.customer_360_etag(moved) != tag


def test_a_page_etag_follows_its_items_and_its_cursor():
    items = [{"account_id": "a", "account_version": 3}, {"account_id": "a", "account_version": 2}]
    tag = etags.transactions_etag(items, None)
    assert etags.transactions_etag(items, "more") != tag
    assert etags.transactions_etag(items[:1], None) != tag
    assert etags.transactions_etag(list(items), None) == tag
    days = [{"_id": "c|2026-12-01|USD", "count": 2}]
    assert etags.stats_etag(days, "day") != etags.stats_etag([{**days[0], "count": 3}], "day")
    assert etags.stats_etag(days, "day") != etags.stats_etag(days, "month")


def test_past_the_burst_a_subject_is_refused_429_with_retry_after():
    limiter = TokenBucketLimiter(rate=0.5, burst=2)
    alice = Principal("alice", frozenset({READ}))
    ensure_within_rate(limiter, alice, "queries")
    ensure_within_rate(limiter, alice, "queries")
    with pytest.raises(ApiError) as refused:
        ensure_within_rate(limiter, alice, "queries")
    assert refused.value.status == 429 and refused.value.code == "rate_limited"
    assert "queries" in refused.value.message
    assert refused.value.headers["Retry-After"] in {"1", "2"}
    ensure_within_rate(limiter, Principal("bob", frozenset({READ})), "queries")
    for _ in range(10):  # no subject, no limit (authentication off)
        ensure_within_rate(limiter, ANONYMOUS, "queries")


def test_cors_origins_are_a_comma_separated_list_of_origins():
    assert Settings().cors_origins == []
    assert Settings(cors_allow_origins=" https://a.example, http://b.example:8080 ,").cors_origins \
        == ["https://a.example", "http://b.example:8080"]
    for bad in ("https://a.example/", "a.example", "https://a.example/app"):
        with pytest.raises(ValidationError):
            Settings(cors_allow_origins=bad)


def test_the_openapi_schema_documents_etags_304_and_429_on_every_view():
    schema = create_query_app(Settings(auth_jwt_secret="x" * 40)).openapi()
    views = {path: item["get"] for path, item in schema["paths"].items()
             if path.startswith("/v1/") and not path.endswith("/stream")}
    assert len(views) >= 10  # every view and page: none may be left undocumented
    for path, operation in views.items():
        assert {"200", "304", "429"} <= set(operation["responses"]), path
        assert {"ETag", "Cache-Control"} <= set(operation["responses"]["200"]["headers"]), path
        assert "If-None-Match" in {p["name"] for p in operation["parameters"]}, path
    # A live stream is never the same answer twice: no ETag, no 304; its 429 is documented.
    streams = {path: item["get"] for path, item in schema["paths"].items()
               if path.endswith("/stream")}
    assert len(streams) == 2
    for path, operation in streams.items():
        assert "304" not in operation["responses"] and "429" in operation["responses"], path
        assert "text/event-stream" in operation["responses"]["200"]["content"], path
