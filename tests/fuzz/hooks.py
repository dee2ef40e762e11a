"""Loaded by schemathesis (`hooks = "tests.fuzz.hooks"` in the generated config) when the fuzz
run checks both services: the one 5xx the contract allows is 503, and then only as
`read_model_behind` (a consistency token naming versions the view does not hold yet) with
Retry-After. Any other 5xx, including a 503 for a dependency, means a bug or a broken stack."""

from __future__ import annotations

import schemathesis


@schemathesis.check
def only_read_model_behind_may_be_503(ctx, response, case):
    if response.status_code < 500:
        return None
    try:
        code = response.json()["error"]["code"]
    except Exception:  # no error body at all is its own failure
        code = None
    if response.status_code != 503 or code != "read_model_behind":
        raise AssertionError(f"server error {response.status_code} ({code}) for "
                             f"{case.method} {case.formatted_path}")
    if "Retry-After" not in response.headers:
        raise AssertionError("a 503 read_model_behind without Retry-After")
    return None
