"""Queries are rate-limited per subject, as commands are (one token-bucket limiter, each
service with its own buckets and settings): past the burst a subject gets 429 `rate_limited`
with Retry-After, in the contract's error format, while other subjects read on."""

from __future__ import annotations

import asyncio
import uuid

from shared.auth import READ, WRITE, mint_token
from shared.config import Settings
from tests.stack import Stack
from tests.support.contract import check_error


def bearer(settings: Settings, subject: str, *scopes: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + mint_token(settings, subject=subject,
                                                    scopes=list(scopes or (READ,)))}


async def test_queries_past_the_rate_limit_are_429_with_retry_after(settings):
    # Commands as tightly limited: alice's command after her queries ran out must still be
    # let in, which it would not be if the two services shared her bucket.
    limited = settings.model_copy(update={"rate_limit_queries_per_s": 0.5,
                                          "rate_limit_query_burst": 5,
                                          "rate_limit_commands_per_s": 0.5,
                                          "rate_limit_burst": 5})
    async with Stack(limited) as stack:
        alice = bearer(settings, "alice")
        # Any view counts, found or not.
        path = f"/v1/accounts/{uuid.uuid4()}"
        answers = [await stack.queries.get(path, headers=alice) for _ in range(5)]
        assert [a.status_code for a in answers] == [404] * 5
        refused = await stack.queries.get("/v1/customers", headers=alice)
        check_error(refused, 429, "rate_limited")
        assert 1 <= int(refused.headers["Retry-After"]) <= 2
        # Another subject has its own bucket; health checks are never limited; and the
        # command service keeps its own buckets for the same subject.
        assert (await stack.queries.get("/v1/customers",
                                        headers=bearer(settings, "bob"))).status_code == 200
        assert (await stack.queries.get("/healthz", headers=alice)).status_code == 200
        registered = await stack.commands.post(
            "/v1/customers", json={"name": "Alice", "email": f"{uuid.uuid4().hex}@example.com"},
            headers=bearer(settings, "alice", WRITE))
        assert registered.status_code == 201, registered.text


async def test_the_default_query_limit_lets_a_client_burst_300_queries(settings):
    defaults = settings.model_copy(update={
        "rate_limit_queries_per_s": Settings().rate_limit_queries_per_s,
        "rate_limit_query_burst": Settings().rate_limit_query_burst})
    async with Stack(defaults) as stack:
        alice = bearer(settings, "alice")
        answers = await asyncio.gather(*(stack.queries.get("/v1/customers", headers=alice)
                                         for _ in range(300)))
        assert [a.status_code for a in answers] == [200] * 300
