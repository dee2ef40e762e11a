"""Conditional reads (RFC 9110 section 13): every view answers its strong ETag and
`Cache-Control: private, no-cache`, and a request whose `If-None-Match` names the current
ETag gets `304 Not Modified` without a body.

The ETags themselves are query_service/etags.py's. The comparison happens after the view was
read, so a request with `X-Consistency-Token` has already waited for its versions: a client
that polls with the token of its last command gets 304 only once the view holds that command
and still shows what the client has.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request, Response

from shared.http import json_response

# `private`: a view is one caller's (a customer's token sees only its own); `no-cache`: a
# cache may keep it but must revalidate it every time, since a view changes whenever an
# event lands.
CACHE_CONTROL = "private, no-cache"
# An entity-tag, weak or strong; its opaque part may hold commas, so the field value is not
# split on them.
_ENTITY_TAG = re.compile(r'(?:W/)?("[^"]*")')

_HEADERS = {
    "ETag": {"description": "strong entity tag of this answer: it changes exactly when the "
                            "answer's content does; send it back in If-None-Match",
             "required": True, "schema": {"type": "string"}},
    "Cache-Control": {"description": "`private, no-cache`: revalidate before reuse",
                      "required": True, "schema": {"type": "string"}},
}
NOT_MODIFIED_RESPONSE: dict[int | str, dict] = {
    304: {"description": "Not Modified: `If-None-Match` names the view's current ETag (or is "
                         "`*`); no body", "headers": _HEADERS},
}
VIEW_HEADERS: dict[int | str, dict] = {200: {"headers": _HEADERS}}


def none_match(if_none_match: str | None, etag: str) -> bool:
    """Whether `If-None-Match` names `etag`: `*` names any current representation, and a list
    is compared weakly (RFC 9110 section 8.8.3.2: `W/"x"` and `"x"` are the same tag), as
    If-None-Match requires. A value that holds no entity-tag names nothing."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return etag in _ENTITY_TAG.findall(if_none_match)


class Conditional:
    """One request's validators: answers a view with its ETag, or 304 when the client has it."""

    def __init__(self, if_none_match: str | None) -> None:
        self.if_none_match = if_none_match

    def answer(self, etag: str, render: Callable[[], dict]) -> Response:
        """The view `render` makes, with its ETag; or 304, without rendering it (a client
        that revalidates in a loop costs the read, not the page)."""
        headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
        if none_match(self.if_none_match, etag):
            # A 304 carries the headers the 200 would have (RFC 9110 section 15.4.5).
            return Response(status_code=304, headers=headers)
        response = json_response(render())
        response.headers.update(headers)
        return response


async def conditional(
    request: Request,
    _documented: Annotated[str | None, Header(
        alias="If-None-Match",
        description="ETags of answers the client holds (or `*`): 304 without a body when one "
                    "is the current one")] = None,
) -> Conditional:
    # Every If-None-Match line, not just the first: a list may be split over several.
    lines = request.headers.getlist("if-none-match")
    return Conditional(", ".join(lines) if lines else None)


ConditionalDep = Annotated[Conditional, Depends(conditional)]
