"""5. Queries: the customer 360 view and a transaction page over HTTP from the query service
(its own process), at concurrency 16, on the read models the projector measurement built,
side by side with a raw `find_one` of the same documents on the same store at the same
concurrency (and, for reference, the raw `find` of the same page); and what a client that
revalidates saves: the same 360 views asked with the ETag it holds (304, no body) against the
full answer."""

from __future__ import annotations

import random

from pymongo import AsyncMongoClient

from bench.context import Context
from bench.procs import Service
from bench.profiling import Recording
from bench.raw import closed_loop
from bench.stats import CpuMeter, latency_summary, rate, ratio
from shared.readmodel import ACCOUNTS, CUSTOMERS, TRANSACTIONS


def _figures(run: dict) -> dict:
    return {"per_s": rate(len(run["latencies"]), run["elapsed_s"]), "errors": run["errors"],
            **latency_summary(run["latencies"])}


async def run(ctx: Context) -> dict:
    shared = ctx.shared.get("read_models")
    if shared is None:
        return {"status": "failed", "error": "needs the projector measurement's read models"}
    settings = shared["settings"]
    rng = random.Random(11)
    customers, accounts = shared["customers"], shared["accounts"]
    concurrency, seconds = ctx.sizes.query_concurrency, ctx.sizes.query_seconds
    api = await Service("query-api", settings, ctx.log_dir).start()
    client = AsyncMongoClient(settings.mongo_url, tz_aware=True)
    db = client[settings.mongo_database]

    async def get(path: str) -> bool:
        status, _, _ = await api.http.get(path)
        return status == 200

    async def customer_360(_w: int, _i: int) -> bool:
        return await get(f"/v1/customers/{rng.choice(customers)}")

    async def transaction_page(_w: int, _i: int) -> bool:
        return await get(f"/v1/accounts/{rng.choice(accounts)}/transactions?limit=50")

    etags: dict[str, str] = {}

    async def revalidated_360(_w: int, _i: int) -> bool:
        customer = rng.choice(list(etags))
        status, _, _ = await api.http.get(f"/v1/customers/{customer}",
                                          headers={"If-None-Match": etags[customer]})
        return status == 304

    async def raw_customer(_w: int, _i: int) -> bool:
        return await db[CUSTOMERS].find_one({"_id": rng.choice(customers)}) is not None

    async def raw_account(_w: int, _i: int) -> bool:
        return await db[ACCOUNTS].find_one({"_id": rng.choice(accounts)}) is not None

    async def raw_page(_w: int, _i: int) -> bool:
        docs = await db[TRANSACTIONS].find({"account_id": rng.choice(accounts)}) \
            .sort("account_version", -1).limit(51).to_list()
        return bool(docs)

    result: dict = {"what": f"GET over HTTP at concurrency {concurrency} vs raw pymongo at "
                            f"the same concurrency, on {len(customers):,} customers and "
                            f"{len(accounts):,} accounts",
                    "concurrency": concurrency, "seconds_each": seconds}
    try:
        await closed_loop(4, min(1.0, seconds), customer_360)  # warm-up
        ctx.say(f"queries: customer 360 and transaction pages at concurrency {concurrency}")
        meter = CpuMeter({"query-api": api.pid, "secantus": ctx.backends.read_store.pid}).start()
        ours_360 = _figures(await closed_loop(concurrency, seconds, customer_360))
        ours_360["cpu_cores"] = meter.stop()
        raw_360 = _figures(await closed_loop(concurrency, seconds, raw_customer))
        for customer in customers[:500]:  # what a client holds after reading them once
            status, headers, _ = await api.http.get(f"/v1/customers/{customer}")
            if status == 200:
                etags[customer] = headers["etag"]
        not_modified = _figures(await closed_loop(concurrency, seconds, revalidated_360))
        ours_page = _figures(await closed_loop(concurrency, seconds, transaction_page))
        raw_acct = _figures(await closed_loop(concurrency, seconds, raw_account))
        raw_pg = _figures(await closed_loop(concurrency, seconds, raw_page))
        result["customer_360"] = {
            "ours": ours_360, "raw_find_one": raw_360,
            "p50_ratio": ratio(ours_360["p50_ms"], raw_360["p50_ms"], 2),
            "p99_ratio": ratio(ours_360["p99_ms"], raw_360["p99_ms"], 2),
            # The ETag comes from the versions in the document, so a 304 still reads it; it
            # saves rendering, compressing and sending the body.
            "not_modified": not_modified,
            "not_modified_throughput_ratio": ratio(not_modified["per_s"], ours_360["per_s"], 2),
            "not_modified_p50_ratio": ratio(not_modified["p50_ms"], ours_360["p50_ms"], 2)}
        result["transaction_page"] = {
            "ours": ours_page, "raw_find_one": raw_acct, "raw_page_find": raw_pg,
            "p50_ratio": ratio(ours_page["p50_ms"], raw_acct["p50_ms"], 2),
            "p99_ratio": ratio(ours_page["p99_ms"], raw_acct["p99_ms"], 2),
            "p50_ratio_to_raw_page": ratio(ours_page["p50_ms"], raw_pg["p50_ms"], 2)}
        if ctx.profile:
            ctx.say("queries: profiling the query service")
            async with Recording(api.pid, ctx.sizes.profile_seconds,
                                 ctx.log_dir / "profile-query-api.txt", "query-api") as rec:
                await closed_loop(concurrency, ctx.sizes.profile_seconds + 0.5,
                                  lambda w, i: (customer_360 if i % 2 else transaction_page)(
                                      w, i))
            result["profile"] = rec.summary
    finally:
        await api.stop()
        await client.drop_database(settings.mongo_database)
        await client.close()
    return result
