"""An app that tells how many objects its process has frozen out of the cyclic collector's
care (tests/integration/test_startup_heap.py), served as the APIs are."""

from __future__ import annotations

import gc

from fastapi import FastAPI


def create_app(settings=None) -> FastAPI:
    app = FastAPI()

    @app.get("/frozen")
    def frozen() -> dict[str, int]:
        return {"objects": gc.get_freeze_count()}

    return app
