"""The strong ETag of each view, derived from the versions it shows, never from its body.

Every read-model document changes only by applying an event, and every applied event raises a
number the view already keeps: an account's `version`, the customer's own `version` and each
account entry's in the 360 view, a transaction's `account_version`, a history entry's
`version`, a day's `count` of figures. Those numbers, with the ids they belong to, identify
what an answer shows; a page adds its `next_cursor` (whether, and from where, more follow).
So an ETag changes exactly when its answer's content does: an event on an unrelated account,
or the same GET again, leaves it alone.

Per answer (a blake2b digest of these, quoted):
- account view: the account's id and version;
- customer 360 view: the customer's id and version, and each listed account's id and version;
- a customer's accounts: each listed account's id and version (after the filters);
- account and customer transactions: each item's (account id, account version), next_cursor;
- account and customer history: each item's (aggregate id, version), next_cursor;
- customer search: each customer's id and own version, next_cursor;
- every account: each account's id and version, next_cursor;
- stats: each day's id (customer, day, currency) and count, and the granularity.

Answers of different URLs may share an ETag (two empty pages): a cache keys on the URL too.
The same content is the same ETag whether gzip-compressed or not, since the tag names the view,
not its bytes; no range requests are served, so no client can mix the bytes of the two.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import orjson

# Raised whenever the views' JSON changes shape for the same read-model versions (a field
# added or renamed in query_service/views.py): tags a client holds from before then no
# longer match, so it is sent the new shape instead of a 304.
RENDERING = 1


def entity_tag(kind: str, *parts: object) -> str:
    """A strong ETag for `parts` (ids, versions: anything JSON can say) of an answer."""
    digest = hashlib.blake2b(orjson.dumps([RENDERING, kind, *parts]), digest_size=12)
    return f'"{digest.hexdigest()}"'


def account_etag(doc: dict) -> str:
    return entity_tag("account", doc["_id"], doc["version"])


def customer_360_etag(doc: dict) -> str:
    return entity_tag("customer", doc["_id"], doc["version"],
                      [(a["account_id"], a["version"]) for a in doc["accounts"]])


def account_list_etag(entries: Iterable[dict]) -> str:
    """A customer's account entries (as its 360 view holds them)."""
    return entity_tag("customer-accounts", [(a["account_id"], a["version"]) for a in entries])


def page_etag(kind: str, keys: Iterable[tuple], next_cursor: str | None) -> str:
    """A page: the (id, version) keys of its items in order, and where the next one starts."""
    return entity_tag(kind, list(keys), next_cursor)


def transactions_etag(docs: Iterable[dict], next_cursor: str | None) -> str:
    return page_etag("transactions", ((d["account_id"], d["account_version"]) for d in docs),
                     next_cursor)


def history_etag(docs: Iterable[dict], next_cursor: str | None) -> str:
    return page_etag("history", ((d["aggregate_id"], d["version"]) for d in docs), next_cursor)


def versioned_page_etag(kind: str, docs: Iterable[dict], next_cursor: str | None) -> str:
    """Views that carry their aggregate's version: customers found, accounts listed."""
    return page_etag(kind, ((d["_id"], d["version"]) for d in docs), next_cursor)


def stats_etag(docs: Iterable[dict], granularity: str) -> str:
    """A day's figures only ever grow by one counted transaction, which raises its `count`:
    the count is the day's revision."""
    return entity_tag("stats", granularity, [(d["_id"], d["count"]) for d in docs])
