"""The OpenAPI descriptions of authentication's refusals, for routes to list in `responses`.

Only documentation: the refusals themselves are built in shared/auth/errors.py; these point the
schema at the shared ErrorResponse body so both services document them alike.
"""

from __future__ import annotations


def _error_response(text: str) -> dict:
    return {"description": text, "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/ErrorResponse"}}}}


AUTH_RESPONSES: dict[int | str, dict] = {
    401: _error_response("No bearer token, or one that is expired, malformed or not signed "
                         "by a trusted key (with a WWW-Authenticate header)"),
    403: _error_response("The token lacks the scope, or the data belongs to another customer"),
}
RATE_LIMITED_RESPONSE: dict[int | str, dict] = {
    429: _error_response("Too many requests from this subject (commands and queries are limited "
                         "apart); retry after Retry-After seconds"),
}
