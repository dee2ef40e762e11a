"""What a verified token's claims say about the caller: its Principal.

- `sub`: who, recorded with every command (at most 255 characters);
- `scope` (space-separated, or a list; `scp` is read too): `accounts:write` to send commands,
  `accounts:read` to query, `admin` for everything (including /metrics when that is closed);
- `customer_id` (optional): limits the token to that customer, its accounts and transactions.

Apart from the signature check so the rules for reading claims stay in one short place.
"""

from __future__ import annotations

import uuid

from shared.auth.errors import unauthorized
from shared.auth.principal import SCOPES, Principal

MAX_SUBJECT_CHARS = 255


def principal_from_claims(claims: dict) -> Principal:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > MAX_SUBJECT_CHARS \
            or not subject.isprintable():
        raise unauthorized(f"the token's sub must be 1 to {MAX_SUBJECT_CHARS} printable "
                           "characters")
    scopes: set[str] = set()
    for claim in ("scope", "scp"):
        value = claims.get(claim)
        if isinstance(value, str):
            scopes.update(value.split())
        elif isinstance(value, list):
            scopes.update(v for v in value if isinstance(v, str))
    customer_id = claims.get("customer_id")
    if customer_id is not None:
        try:
            customer_id = str(uuid.UUID(str(customer_id)))
        except ValueError:
            raise unauthorized("the token's customer_id is not a customer id") from None
    return Principal(subject, frozenset(scopes) & set(SCOPES), customer_id)
