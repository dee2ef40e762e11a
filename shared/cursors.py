"""Opaque, URL-safe keyset cursors: the sort key of the last item served, nothing else, so a
page never repeats or skips an item that existed when paging started, whatever is inserted."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from shared.envelope import iso_utc, parse_iso_utc
from shared.http import ApiError

# What the read store can compare a number with (a BSON int64): a bigger one in a cursor fails
# in the driver, as a 500, unless it is refused here.
_INT64 = range(-(2**63), 2**63)


def encode_cursor(position: dict) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, required: dict[str, type]) -> dict:
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(position, dict) or any(
            not isinstance(position.get(key), kind) or isinstance(position.get(key), bool)
            or (kind is int and position[key] not in _INT64)
            for key, kind in required.items()
        ):
            raise ValueError("unexpected cursor shape")
    except (ValueError, UnicodeDecodeError):
        raise invalid_cursor() from None
    return position


def invalid_cursor() -> ApiError:
    """The 422 for a cursor this service did not issue (or one whose content does not parse)."""
    return ApiError(422, "validation_error", "the request is malformed",
                    [{"field": "cursor", "message": "not a cursor this service issued"}])


def newest_first_position(cursor: str) -> tuple[datetime, str]:
    """The (time, id) of the last item a newest-first page served, as its cursor names them."""
    after = decode_cursor(cursor, {"at": str, "id": str})
    try:
        return parse_iso_utc(after["at"]), after["id"]
    except ValueError:
        raise invalid_cursor() from None


def continue_newest_first(match: dict, cursor: str, field: str) -> None:
    """Narrow `match` to what follows the cursor's item in a list sorted newest first by the
    time `field`, ties by `_id` descending (the cursor is that item's time and id)."""
    at, last_id = newest_first_position(cursor)
    # The bound on the time alone lets an index start at the cursor; the `$or` then drops what
    # shares its time and came before it.
    match.setdefault(field, {})["$lte"] = at
    match["$or"] = [{field: {"$lt": at}}, {field: at, "_id": {"$lt": last_id}}]


def newest_first_cursor(items: list[dict], limit: int, field: str,
                        id_field: str = "_id") -> str | None:
    """The cursor after a page of `limit` from `items` (read with one more), if more follow."""
    if len(items) <= limit:
        return None
    last = items[limit - 1]
    return encode_cursor({"at": iso_utc(last[field]), "id": last[id_field]})


def continue_below(match: dict, cursor: str, field: str) -> None:
    """Narrow `match` to what follows the cursor's item in a list sorted by the integer
    `field` descending (a version: unique within the list, so no tie to break)."""
    match[field] = {"$lt": decode_cursor(cursor, {"before": int})["before"]}


def below_cursor(items: list[dict], limit: int, field: str) -> str | None:
    """The cursor after a page of `limit` from `items` (read with one more), if more follow."""
    return encode_cursor({"before": items[limit - 1][field]}) if len(items) > limit else None
