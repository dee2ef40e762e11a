"""schemathesis against both OpenAPI schemas, over real HTTP against the whole stack, with a
valid admin token: no 5xx (but a 503 read_model_behind), no response that breaks its documented
schema, status or headers, no schema-valid request refused, no invalid one accepted, and no
route that works without a token.

Each service gets every phase schemathesis has: the schema's examples, a coverage pass over
boundaries and wrong types, random fuzzing, and stateful sequences it infers from the responses
(open a customer, then an account for it, then money in and out, then the command's status).
Ids of real customers, accounts and commands are mixed into the generated ids so that most
requests reach the views and aggregates rather than a 404.

The suite runs a bounded number of examples per operation; `make fuzz` runs it at length:
FUZZ_EXAMPLES (per operation), FUZZ_SEED and FUZZ_MAX_TIME (seconds per service) tune it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
import uuid
from pathlib import Path

import pytest
import pytest_asyncio

from command_service.db.migrate import upgrade_to_head
from shared.auth import ADMIN, mint_token
from shared.config import Settings
from shared.consistency import encode_token
from shared.cursors import encode_cursor
from tests.stack import TEST_JWT_SECRET, Stack
from tests.support.backends import BROKER_KINDS

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
FUZZ_SEED = int(os.environ.get("FUZZ_SEED", "20261123"))
FUZZ_MAX_TIME = os.environ.get("FUZZ_MAX_TIME")  # seconds per service; none: examples decide


@pytest_asyncio.fixture
async def fuzz_settings(broker, read_store, tmp_path) -> Settings:
    """One backend is enough to fuzz the HTTP layer: SQLite, whatever else the suite runs on."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'write.db'}"
    await asyncio.to_thread(upgrade_to_head, url)
    uid = uuid.uuid4().hex[:10]
    return Settings(
        database_url=url, kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_enable_idempotence=broker.idempotent, kafka_topic=f"fuzz-{uid}",
        kafka_topic_partitions=2,
        kafka_consumer_group=f"fuzz-{uid}", kafka_session_timeout_ms=2000,
        mongo_url=read_store.mongo_url,
        mongo_database=f"fuzz_{uid}", relay_idle_poll_ms=10, projector_poll_ms=50,
        auth_jwt_secret=TEST_JWT_SECRET, rate_limit_burst=1_000_000,
        rate_limit_query_burst=1_000_000,
        # A generated consistency token never waits long.
        consistency_wait_default_ms=50, consistency_wait_max_ms=200,
    )


async def seed(stack: Stack) -> dict[str, list[str]]:
    """A few customers with accounts, money moved between them, every view caught up."""
    ids: dict[str, list[str]] = {"customers": [], "accounts": [], "commands": []}
    for i in range(3):
        customer = (await stack.commands.post("/v1/customers", json={
            "name": f"Fuzz Customer {i}", "email": f"fuzz{i}.{uuid.uuid4().hex}@example.com"}
        )).json()
        ids["customers"].append(customer["customer_id"])
        for currency in ("USD", "EUR"):
            account = (await stack.commands.post("/v1/accounts", json={
                "customer_id": customer["customer_id"], "type": "checking",
                "currency": currency, "initial_deposit": "1000.00"})).json()
            ids["accounts"].append(account["account_id"])
            ids["commands"].append(account["command_id"])
    first, second = ids["accounts"][0], ids["accounts"][2]
    moved = await stack.commands.post("/v1/transfers", json={
        "from_account_id": first, "to_account_id": second, "amount": "12.34"})
    ids["commands"].append(moved.json()["command_id"])
    ids["consistency_tokens"] = [moved.headers["X-Consistency-Token"],
                                 encode_token({first: 1, ids["customers"][0]: 1})]
    ids["cursors"] = [encode_cursor({"before": 2}), encode_cursor({"after": ids["customers"][0]})]
    log = (await stack.commands.get(f"/v1/customers/{ids['customers'][0]}/commands",
                                    params={"limit": 1})).json()
    ids["command_cursors"] = [log["next_cursor"]]
    for account_id in (first, second):
        await stack.eventually(f"/v1/accounts/{account_id}",
                               lambda r: r.status_code == 200 and r.json()["version"] == 2)
    for customer_id in ids["customers"]:
        await stack.eventually(f"/v1/customers/{customer_id}/stats",
                               lambda r: r.status_code == 200 and r.json()["days"])
    return ids


def _toml_list(values: list) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def config(service: str, ids: dict[str, list[str]], examples: int) -> str:
    """The schemathesis configuration of one service's run (TOML)."""
    bindings = {"path.account_id": "accounts", "path.customer_id": "customers"}
    if service == "commands":
        bindings |= {"path.command_id": "commands", "body.customer_id": "customers",
                     "body.from_account_id": "accounts", "body.to_account_id": "accounts",
                     "query.cursor": "command_cursors"}
        # The same account on both sides of a transfer is schema-valid but 422 (docs/api.md),
        # and so is a cursor the service did not issue (real ones are mixed in above).
        operations = [("/v1/transfers", ["2xx", "401", "403", "404", "409", "422", "429"]),
                      ("/v1/customers/{customer_id}/commands",
                       ["2xx", "401", "403", "404", "422"])]
    else:
        bindings |= {"header.X-Consistency-Token": "consistency_tokens",
                     "query.cursor": "cursors"}
        # A consistency token and a cursor are opaque strings the schema cannot tell apart
        # from noise; one this service did not issue is 422. Real ones are mixed in above.
        # An If-None-Match of "*" (or a real ETag) is schema-valid and answered 304.
        operations = [("^/v1/", ["2xx", "304", "401", "403", "404", "422"])]
    lines = [
        f"seed = {FUZZ_SEED}",
        'hooks = "tests.fuzz.hooks"',
        "[generation]",
        f"max-examples = {examples}",
        'database = "none"',
        # Unknown headers and query parameters are ignored, as HTTP services do.
        "allow-extra-parameters = false",
        "[auth.openapi.bearerAuth]",
        'bearer = "${CQRS_FUZZ_TOKEN}"',
        # Our own check (tests/fuzz/hooks.py) says which 5xx is allowed.
        "[checks.not_a_server_error]",
        'expected-statuses = ["2xx", "3xx", "4xx", "503"]',
        *(f"[dictionaries.{name}]\nvalues = {_toml_list(values)}"
          for name, values in ids.items()),
        "[parameters]",
        *(f'"{key}" = {{ dictionary = "{name}", probability = 0.5 }}'
          for key, name in bindings.items()),
    ]
    for path, statuses in operations:
        key = "include-path-regex" if path.startswith("^") else "include-path"
        lines += ["[[operations]]", f'{key} = "{path}"',
                  "[operations.checks.positive_data_acceptance]",
                  f"expected-statuses = {_toml_list(statuses)}"]
    if service == "queries":
        # An event stream's 200 lasts until its client leaves, and schemathesis reads a body
        # to its end: tests/integration/test_streams.py checks the streams instead.
        lines += ["[[operations]]", 'include-path-regex = "/stream$"', "enabled = false"]
    return "\n".join([*lines, ""])


async def run_schemathesis(name: str, base_url: str, config_file: Path, token: str,
                           log_dir: Path) -> tuple[int, str, float]:
    argv = [str(SCHEMATHESIS), "--config-file", str(config_file), "--no-color", "run",
            f"{base_url}/openapi.json", "--checks", "all", "--workers", "1",
            "--request-timeout", "15"]
    if FUZZ_MAX_TIME:
        argv += ["--max-time", FUZZ_MAX_TIME]
    env = {**os.environ, "CQRS_FUZZ_TOKEN": token,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=log_dir, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    (log_dir / f"schemathesis-{name}.log").write_text(text)
    return process.returncode, text, time.monotonic() - started


def summary(text: str) -> str:
    cases = re.search(r"Test cases:\s*\n\s*(.+)", text)
    return cases.group(1).strip() if cases else "no summary"


# The HTTP layer is the same whichever broker carries the events: fuzz on one of them.
@pytest.mark.parametrize("broker", BROKER_KINDS[:1], indirect=True)
@pytest.mark.slow
async def test_schemathesis_finds_nothing_wrong_with_either_service(fuzz_settings, tmp_path):
    token = mint_token(fuzz_settings, subject="fuzzer", scopes=[ADMIN], ttl_s=3600)
    async with Stack(fuzz_settings) as stack:
        ids = await seed(stack)
        runs = []
        for name, client in (("commands", stack.commands), ("queries", stack.queries)):
            config_file = tmp_path / f"schemathesis-{name}.toml"
            config_file.write_text(config(name, ids, FUZZ_EXAMPLES))
            runs.append(run_schemathesis(name, str(client.base_url).rstrip("/"), config_file,
                                         token, tmp_path))
        runs = await asyncio.gather(*runs)
    report = []
    for name, (code, text, seconds) in zip(("command service", "query service"), runs,
                                           strict=True):
        report.append(f"{name}: {summary(text)} in {seconds:.1f} s")
        assert code == 0, f"schemathesis found problems in the {name}:\n{text[-12000:]}"
    print("\nfuzz: " + "; ".join(report))
