"""`make bench` keeps working: its smoke mode (tiny sizes, its own Tansu and SecantusDB) runs
every measurement and writes the JSON and the table. No speed is asserted here: these
machines are shared and noisy, and the real run compares ratios, not thresholds."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.workload import fill_write_model
from command_service.db.engine import create_engine
from command_service.db.migrate import upgrade_to_head
from command_service.db.tables import outbox
from command_service.domain.model import Account, AccountType, Customer
from command_service.unit_of_work import CommandRecord, SqlUnitOfWork
from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = {"commands", "relay", "peer", "projector", "queries", "e2e", "streams", "verify",
            "scaling", "profiles"}


@pytest.mark.slow
def test_bench_smoke_run_writes_every_section_and_the_table(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CQRS_BENCH_MYSQL_URL"}
    done = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]

    [json_path] = tmp_path.glob("*-smoke.json")
    results = json.loads(json_path.read_text())
    sections = results["sections"]
    assert set(sections) == SECTIONS
    for name in ("commands", "relay", "projector", "queries", "e2e", "streams", "verify",
                 "scaling"):
        assert sections[name]["status"] == "ok", (name, sections[name])
    # python-cqrs comes with the bench extra; without it the peer says why, never a number
    assert sections["peer"]["status"] in ("ok", "unavailable")
    if sections["peer"]["status"] == "unavailable":
        assert sections["peer"]["reason"]
    else:
        assert sections["peer"]["tuned"]["events"] > 0

    assert [lv["concurrency"] for lv in sections["commands"]["levels"]] == [1, 8, 32]
    for level in sections["commands"]["levels"]:
        assert level["ours"]["count"] > 0 and level["raw"]["count"] > 0
        assert level["throughput_ratio"] is not None
        assert level["bare"]["count"] > 0 and level["bare_throughput_ratio"] is not None
        assert level["ours"]["cpu_ms_per_deposit"] > 0
        assert level["bare"]["cpu_ms_per_deposit"] is not None
    relay = sections["relay"]
    assert relay["ours"]["events"] == relay["outbox_rows"] == relay["raw"]["events"]
    assert relay["ours"]["unsent_after"] == 0
    projector = sections["projector"]
    assert projector["ours"]["events"] >= projector["events"]
    assert projector["ours"]["round_trips_per_1000_events"]["on_the_wire"] > 0
    assert sections["queries"]["customer_360"]["ours"]["count"] > 0
    assert sections["queries"]["customer_360"]["not_modified"]["errors"] == 0  # each a 304
    for level in sections["streams"]["levels"]:  # every stream got every deposit's event
        assert level["pushes_received"] == level["pushes_expected"] > 0, level
    e2e = sections["e2e"]
    assert e2e["floor"]["count"] > 0
    assert e2e["runs"] and all(run["lag"]["count"] > 0 for run in e2e["runs"])
    for run in e2e["runs"]:  # each run's events were timed at every measured stage
        stages = run["stages"]["stages"]
        assert stages["commit → claim"]["count"] > 0 and stages["fetch → written"]["count"] > 0
        assert run["stages"]["dominant"] in stages
    assert set(sections["scaling"]) >= {"relay", "projector"}
    for run in sections["verify"]["by_size"]:  # the pass checked every changed aggregate
        assert run["checked_aggregates"] > 0 and run["drift"] == run["whole_log_drift"] == 0

    table = (tmp_path / "latest.md").read_text()
    assert table == json_path.with_suffix(".md").read_text()
    assert "| Measurement | Ours | Ceiling (same run) | Ratio | Target | Met |" in table
    for number in range(1, 9):
        assert f"| {number}. " in table
    assert "| 4. …where the time goes, " in table
    for row in ("| 1. …beside a bare FastAPI endpoint, concurrency 32 |",
                "| 1. …CPU per deposit in the server process, concurrency 32 |",
                "| 1. …p99 of a deposit, concurrency 32 |"):
        assert row in table


async def test_the_bulk_outbox_fill_writes_the_rows_the_unit_of_work_writes(tmp_path):
    """The relay benchmark fills its outbox in bulk; its rows must be the ones a command's
    unit of work writes, or the relay would be measured on other messages."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'write.db'}"
    await asyncio.to_thread(upgrade_to_head, url)
    engine = create_engine(Settings(database_url=url))
    try:
        now = datetime.now(UTC)
        customer = Customer.register(customer_id="c1", name="A", email="a@example.com", now=now)
        account = Account.open(account_id="a1", customer_id="c1",
                               account_type=AccountType.CHECKING, currency="USD",
                               initial_deposit_minor=100, transaction_id="t1", now=now)
        account.deposit(amount_minor=5, transaction_id="t2", reference="r", now=now)
        async with SqlUnitOfWork(engine, "topic") as uow:
            uow.aggregates.add(customer)
            uow.aggregates.add(account)
            await uow.commit(CommandRecord("cmd", "test", now))
        await fill_write_model(engine, "topic", 3)
        async with engine.connect() as conn:
            rows = [dict(r) for r in
                    (await conn.execute(sa.select(outbox).order_by(outbox.c.id))).mappings()]
    finally:
        await engine.dispose()
    deposits = [r for r in rows if json.loads(r["payload"])["event_type"] == "MoneyDeposited"]
    from_uow, from_fill = deposits[0], deposits[-1]
    assert from_uow["id"] < from_fill["id"]

    assert set(from_uow) == set(from_fill)
    assert set(json.loads(from_uow["headers"])) == set(json.loads(from_fill["headers"]))
    uow_payload, fill_payload = json.loads(from_uow["payload"]), json.loads(from_fill["payload"])
    assert set(uow_payload) == set(fill_payload)
    assert set(uow_payload["payload"]) == set(fill_payload["payload"])
    assert fill_payload["position"] == from_fill["event_position"]
    assert from_fill["message_key"] == fill_payload["aggregate_id"]
