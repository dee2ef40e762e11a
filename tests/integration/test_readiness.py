"""/readyz answers 503 naming the dependency that does not answer, and never hangs."""

from __future__ import annotations

import time

import httpx
import pytest

from cli.servers.process import free_port
from command_service.api.app import create_app as create_command_app
from query_service.app import create_app as create_query_app
from tests.stack import admin_headers, http_client, in_loop_server

pytestmark = pytest.mark.every_pair("each store is down its own way")


async def _readyz(app) -> tuple[httpx.Response, float]:
    server = in_loop_server(app)
    port = await server.start()
    try:
        async with http_client(port, timeout=30) as http:
            assert (await http.get("/healthz")).status_code == 200  # alive regardless
            started = time.monotonic()
            response = await http.get("/readyz")
            return response, time.monotonic() - started
    finally:
        await server.stop()


async def test_query_service_is_not_ready_while_the_read_store_is_down(settings):
    down = settings.model_copy(update={
        "mongo_url": f"mongodb://127.0.0.1:{free_port()}/?directConnection=true",
        "mongo_timeout_ms": 300})
    response, elapsed = await _readyz(create_query_app(down))
    assert response.status_code == 503
    assert response.json()["error"]["details"] == [{"dependency": "read_store"}]
    assert response.headers["Retry-After"]
    assert elapsed < 5


async def test_command_service_is_not_ready_while_the_database_is_down(settings):
    down = settings.model_copy(update={
        "database_url": f"mysql+asyncmy://root:@127.0.0.1:{free_port()}/nowhere",
        "database_timeout_s": 1})
    response, elapsed = await _readyz(create_command_app(down))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "dependency_unavailable"
    assert "database" in response.json()["error"]["message"]
    assert elapsed < 5


async def test_a_command_while_the_database_is_down_is_503_with_retry_after(settings):
    down = settings.model_copy(update={
        "database_url": f"mysql+asyncmy://root:@127.0.0.1:{free_port()}/nowhere",
        "database_timeout_s": 1})
    server = in_loop_server(create_command_app(down))
    port = await server.start()
    try:
        async with http_client(port, timeout=30,
                                     headers=admin_headers(down)) as http:
            response = await http.post("/v1/customers",
                                       json={"name": "Down", "email": "down@example.com"})
    finally:
        await server.stop()
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.json()["error"]["code"] == "dependency_unavailable"
