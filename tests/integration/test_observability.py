"""Operators can see inside: status shows backlog and lag moving; metrics move when they should."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest

from operations.status import collect_status, render
from tests.stack import Stack


def metric(text: str, name: str, labels: str = "") -> float:
    """The value of one sample in Prometheus text, 0 when absent."""
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def _account(stack: Stack) -> str:
    customer = (await stack.commands.post("/v1/customers", json={
        "name": "Observed", "email": f"{uuid.uuid4().hex}@example.com"})).json()
    return (await stack.commands.post("/v1/accounts", json={
        "customer_id": customer["customer_id"], "type": "checking", "currency": "USD",
        "initial_deposit": "10.00"})).json()["account_id"]


@pytest.mark.every_pair("consumer offsets and lag, and each store's backlog")
async def test_status_shows_the_backlog_and_the_lag_rise_and_fall(settings, engine, read_db):
    async with Stack(settings) as stack:
        account = await _account(stack)
        await stack.eventually(f"/v1/accounts/{account}", lambda r: r.status_code == 200)
        status = await collect_status(settings, engine, read_db)
        assert status.unsent == 0 and status.relay_holder
        assert sum(v for v in status.lag().values() if v) == 0

        await stack.projector.stop()
        for _ in range(5):
            await stack.commands.post(f"/v1/accounts/{account}/deposits", json={"amount": "1"})
        for _ in range(100):  # the relay publishes; nobody consumes
            status = await collect_status(settings, engine, read_db)
            if status.unsent == 0 and sum(v or 0 for v in status.lag().values()) >= 5:
                break
            await asyncio.sleep(0.1)
        # 5 events wait. Tansu reports a partition's end offset one short (the last offset,
        # not the next), so each partition with waiting events shows one less.
        assert sum(v or 0 for v in status.lag().values()) >= 1

        await stack.relay.stop()
        for _ in range(3):
            await stack.commands.post(f"/v1/accounts/{account}/deposits", json={"amount": "1"})
        status = await collect_status(settings, engine, read_db)
        assert status.unsent == 3 and status.oldest_unsent_s is not None

        stack.relay.start()
        stack.projector.start()
        await stack.eventually(f"/v1/accounts/{account}",
                               lambda r: r.json()["version"] == 9, timeout_s=30)
        for _ in range(100):
            status = await collect_status(settings, engine, read_db)
            if status.unsent == 0 and sum(v or 0 for v in status.lag().values()) == 0:
                break
            await asyncio.sleep(0.1)
        assert status.unsent == 0
        assert sum(v or 0 for v in status.lag().values()) == 0
        assert render(status) is not None


async def test_metrics_move_when_commands_flow(settings, read_db):
    async with Stack(settings) as stack:
        before = (await stack.commands.get("/metrics")).text
        account = await _account(stack)
        deposit = await stack.commands.post(f"/v1/accounts/{account}/deposits",
                                            json={"amount": "1.00"})
        refused = await stack.commands.post(f"/v1/accounts/{account}/withdrawals",
                                            json={"amount": "999.00"})
        assert refused.status_code == 409
        await stack.queries.get(f"/v1/accounts/{account}",
                                headers={"X-Consistency-Token": deposit.headers[
                                    "X-Consistency-Token"]})
        after = (await stack.queries.get("/metrics")).text  # one process, one registry

        def moved(name: str, labels: str = "") -> float:
            return metric(after, name, labels) - metric(before, name, labels)

        assert moved("cqrs_commands_total", 'outcome="completed",type="deposit"') == 1
        assert moved("cqrs_commands_total", 'outcome="refused",type="withdraw"') == 1
        assert moved("cqrs_relay_published_events_total") >= 2  # events ahead of the wait
        assert moved("cqrs_projector_events_total", 'outcome="applied"') >= 2
        assert moved("cqrs_projector_commit_to_apply_seconds_count") >= 2
        # every stage of an event's way to the views, each event observed once per stage
        for stage in ("cqrs_relay_commit_to_claim_seconds", "cqrs_relay_claim_to_ack_seconds",
                      "cqrs_projector_produce_to_fetch_seconds",
                      "cqrs_projector_fetch_to_written_seconds"):
            assert moved(f"{stage}_count") >= 2, stage
            assert 0 < moved(f"{stage}_sum") < 30 * moved(f"{stage}_count"), stage
        assert moved("cqrs_projector_view_writes_total", 'view="accounts"') >= 1
        assert moved("cqrs_query_consistency_wait_seconds_count") == 1
        assert "cqrs_outbox_backlog_events" in after
        assert moved("cqrs_http_request_duration_seconds_count",
                     'method="POST",route="/v1/accounts/{account_id}/deposits",'
                     'service="command",status="201"') == 1
        assert moved("cqrs_http_request_duration_seconds_count",
                     'method="POST",route="/v1/accounts/{account_id}/withdrawals",'
                     'service="command",status="409"') == 1
