"""Who is calling and what they may do: the scopes and the Principal both services check.

Kept apart from tokens and HTTP so the domain side (command access rules, the service's own
commands) can reason about a caller without knowing how a token was checked.
"""

from __future__ import annotations

from dataclasses import dataclass

ADMIN = "admin"
READ = "accounts:read"
WRITE = "accounts:write"
SCOPES = (READ, WRITE, ADMIN)


@dataclass(frozen=True)
class Principal:
    """Who is calling, and what the token lets them do."""

    subject: str
    scopes: frozenset[str]
    customer_id: str | None = None
    authenticated: bool = True

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.scopes

    def has(self, scope: str) -> bool:
        return self.is_admin or scope in self.scopes

    @property
    def restricted(self) -> bool:
        """A customer's token: its own customer, accounts and transactions only."""
        return not self.is_admin and self.customer_id is not None

    def may_see_customer(self, customer_id: str | None) -> bool:
        return not self.restricted or customer_id == self.customer_id


# With authentication off, every caller is this one; commands record it as their subject.
ANONYMOUS = Principal("anonymous", frozenset(SCOPES), None, authenticated=False)
# A command run by code in this process (tests, operations), not over HTTP.
SYSTEM = Principal("system", frozenset(SCOPES), None, authenticated=False)
