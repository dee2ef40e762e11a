"""Idempotency-Key: the first response to a key is stored with its command, in the command's
own transaction, and a retry with the same key and body gets it back byte for byte.

A key belongs to the subject that sent it (the `sub` of its bearer token): two callers may
pick the same key without ever seeing each other's responses. The unique index on
`commands (subject, idempotency_key)` is what makes two racing requests of one subject with one
key produce one effect: the second transaction fails on the index and rolls back, and its
caller answers with the stored response of the first.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from command_service.db.tables import commands, utc_now


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str
    headers: dict[str, str]


@dataclass(frozen=True)
class IdempotencyKey:
    key: str
    fingerprint: str  # of the request: method, path and canonical JSON body
    ttl: timedelta

    def expires_at(self, now: datetime) -> datetime:
        return (now + self.ttl).astimezone(UTC).replace(tzinfo=None)


class IdempotencyRaceError(Exception):
    """Another request with the same key committed first; answer with its response."""


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """Equal for the same JSON whatever its spacing or key order; raw bytes if not JSON."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(b"%s %s\n%s" % (method.encode(), path.encode(), canonical)).hexdigest()


async def find_stored_response(engine: AsyncEngine, key: str, subject: str
                               ) -> tuple[str, StoredResponse] | None:
    """The fingerprint and response `subject` stored for `key`, if it has not expired. An
    expired key is released (set to NULL) so that it can be used again."""
    now = utc_now()
    mine = sa.and_(commands.c.subject == subject, commands.c.idempotency_key == key)
    async with engine.begin() as conn:
        row = (await conn.execute(
            sa.select(commands.c.request_fingerprint, commands.c.response_status,
                      commands.c.response_body, commands.c.response_headers,
                      commands.c.expires_at)
            .where(mine)
        )).first()
        if row is None:
            return None
        if row.expires_at is not None and row.expires_at < now:
            await conn.execute(commands.update().where(mine).values(idempotency_key=None))
            return None
    return row.request_fingerprint, StoredResponse(
        row.response_status, row.response_body, json.loads(row.response_headers or "{}"))
