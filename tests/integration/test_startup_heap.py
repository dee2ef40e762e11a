"""An API process takes what its startup built out of the cyclic collector's care
(shared/worker.py, `start_serving`), whether it serves alone (`command-api`) or as one of
`--workers N`: without it every full collection walks the whole startup heap again, and a
deposit's p99 under load was twice the bare endpoint's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from cli.servers.process import free_port

APP = "tests.support.heap_app:create_app"
SERVE_ALONE = ("from shared.worker import run, serve_app; from tests.support.heap_app import "
               "create_app; run(serve_app(create_app(), '127.0.0.1', {port}))")
SERVE_AS_WORKERS = ("import sys; from shared.supervisor import serve_workers; "
                    f"sys.exit(serve_workers({APP!r}, '127.0.0.1', {{port}}, 2))")


def _frozen_objects_of_a_served_process(code: str) -> int:
    port = free_port()
    service = subprocess.Popen([sys.executable, "-c", code.format(port=port)],
                               env={**os.environ, "CQRS_AUTH_DISABLED": "true"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert service.poll() is None, service.communicate()[0]
            try:
                return httpx.get(f"http://127.0.0.1:{port}/frozen", timeout=2).json()["objects"]
            except httpx.TransportError:
                time.sleep(0.05)
        pytest.fail("the process never answered")
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=30) == 0, service.communicate()[0]


def test_a_single_process_api_freezes_its_startup_heap():
    assert _frozen_objects_of_a_served_process(SERVE_ALONE) > 10_000


def test_each_worker_of_an_api_freezes_its_startup_heap():
    assert _frozen_objects_of_a_served_process(SERVE_AS_WORKERS) > 10_000
