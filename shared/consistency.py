"""The read-your-writes token: an opaque, URL-safe string naming aggregate versions.

Commands answer with it (`X-Consistency-Token`); queries that send it back wait until their view
holds at least those versions. It is a hint about the past, not a credential: forging one can
only make a query wait.
"""

from __future__ import annotations

import base64
import json

MAX_TOKEN_CHARS = 4096


class InvalidToken(ValueError):
    pass


def encode_token(versions: dict[str, int]) -> str:
    raw = json.dumps(versions, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> dict[str, int]:
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken("the consistency token is too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        versions = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidToken("the consistency token is not one this service issued") from exc
    if not isinstance(versions, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in versions.items()
    ):
        raise InvalidToken("the consistency token is not one this service issued")
    return versions
