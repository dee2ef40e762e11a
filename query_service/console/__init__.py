"""`GET /console`: one self-contained page (console.html: no external script, font or style,
so it works on a machine with no internet) where a person pastes a token and a customer id and
watches the customer's 360 view and latest transactions change live, over the customer's
Server-Sent Events stream.

The page itself holds no data and needs no token; what it shows comes from the API with the
token the person gives it. Its Content-Security-Policy allows exactly its own inline script and
style (by hash) and requests to this service alone.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter()


def _hash_of(tag: str, page: str) -> str:
    body = re.search(rf"<{tag}>(.*?)</{tag}>", page, re.S).group(1)
    return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"


@cache
def _page() -> tuple[str, dict[str, str]]:
    page = (files(__package__) / "console.html").read_text(encoding="utf-8")
    policy = (f"default-src 'none'; script-src {_hash_of('script', page)}; "
              f"style-src {_hash_of('style', page)}; connect-src 'self'; "
              "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return page, {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff",
                  "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


@router.get("/console", response_class=HTMLResponse, tags=["console"],
            summary="A live console: a customer's 360 view and latest transactions",
            description="A self-contained page; paste a token with accounts:read and a "
                        "customer id. It follows GET /v1/customers/{id}/stream.")
async def console() -> HTMLResponse:
    page, headers = _page()
    return HTMLResponse(page, headers=headers)
