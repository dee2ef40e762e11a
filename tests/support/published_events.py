"""Every message the service writes for publishing, checked against the published contract.

The relay sends outbox rows byte for byte (tests/integration/test_relay.py), so an outbox row
is exactly a message on the topic: after each test, every row of its write database that the
command service wrote is validated against docs/events/ (the checked-in files consumers use,
not the code that generates them). Rows a test crafts by hand carry no `causation_id` header,
which the command service always writes, and are left out. The count is reported at the end
of the session, beside the backends.
"""

from __future__ import annotations

import functools
import json
import uuid
from datetime import datetime
from pathlib import Path

import jsonschema
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from command_service.db.tables import outbox

EVENTS_DOCS = Path(__file__).resolve().parents[2] / "docs" / "events"
validated = 0  # messages checked this session


def _format_checker() -> jsonschema.FormatChecker:
    """Every format jsonschema knows, with uuid and date-time checked even without the extra
    packages it would use for them."""
    checker = jsonschema.FormatChecker()
    checker.checks("uuid", raises=ValueError)(lambda text: bool(uuid.UUID(text)))
    checker.checks("date-time", raises=ValueError)(
        lambda text: text[-1] in "Zz" and bool(datetime.fromisoformat(text[:-1])))
    return checker


@functools.cache
def validators() -> dict[tuple[str, int], jsonschema.Draft7Validator]:
    checker = _format_checker()
    found = {}
    for path in sorted(EVENTS_DOCS.glob("*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.Draft7Validator.check_schema(schema)
        properties = schema["properties"]
        key = (properties["event_type"]["const"], properties["schema_version"]["const"])
        found[key] = jsonschema.Draft7Validator(schema, format_checker=checker)
    return found


def contract_errors(message: dict) -> list[str]:
    """Why `message` (a Kafka message value, parsed) breaks the contract; empty when it holds."""
    key = (message.get("event_type"), message.get("schema_version", 1))
    validator = validators().get(key)
    if validator is None:
        return [f"no schema in docs/events/ for {key[0]} v{key[1]}"]
    return [f"{'.'.join(map(str, e.absolute_path)) or '(value)'}: {e.message}"
            for e in validator.iter_errors(message)]


async def published_message_errors(database_url: str) -> list[str]:
    """Check every outbox row the command service wrote in this database."""
    global validated
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            if not await conn.run_sync(lambda c: sa.inspect(c).has_table("outbox")):
                return []
            rows = (await conn.execute(
                sa.select(outbox.c.id, outbox.c.headers, outbox.c.payload))).all()
    finally:
        await engine.dispose()
    problems = []
    for row in rows:
        if "causation_id" not in json.loads(row.headers):
            continue  # crafted by the test itself
        validated += 1
        problems += [f"outbox row {row.id}: {error}"
                     for error in contract_errors(json.loads(row.payload))]
    return problems
