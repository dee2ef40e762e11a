"""The two refusals of authentication: 401 (no usable token) and 403 (not allowed).

One place builds them so every refusal carries the same `WWW-Authenticate` challenge (RFC 6750),
whether the token check, a route or the middleware says no.
"""

from __future__ import annotations

from shared.http import ApiError

REALM = 'Bearer realm="cqrs-accounts"'


def unauthorized(message: str, *, invalid: bool = True) -> ApiError:
    challenge = f'{REALM}, error="invalid_token"' if invalid else REALM
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


def forbidden(message: str, scope: str | None = None) -> ApiError:
    headers = ({"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{scope}"'}
               if scope else {})
    return ApiError(403, "forbidden", message, headers=headers)
