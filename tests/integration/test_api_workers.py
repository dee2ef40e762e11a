"""`command-api --workers N` and `query-api --workers N` started from the console script, as a
deployment runs them: several processes answer on one port, /metrics counts every request
whichever worker is asked, a worker that dies is replaced, and SIGTERM (or the parent's death)
leaves no process behind."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid

import psutil
import pytest

from command_service.db.migrate import upgrade_to_head
from shared import supervisor
from shared.config import Settings
from shared.metrics import multiprocess_dir
from tests.stack import TEST_JWT_SECRET, admin_headers
from tests.support.processes import Process
from tests.support.workers import (
    post_json,
    sample,
    scrape_each_worker,
    send_until_each_worker_answered,
    series,
    workers_of,
)

REQUESTS = "cqrs_http_request_duration_seconds_count"


@pytest.fixture
def command_settings(tmp_path) -> Settings:
    url = f"sqlite+aiosqlite:///{tmp_path / 'write.db'}"
    upgrade_to_head(url)
    return Settings(database_url=url, auth_jwt_secret=TEST_JWT_SECRET)


def register(headers: dict[str, str]):
    def send(conn, n: int):
        response = post_json(conn, "/v1/customers", {
            "name": f"Worker test {n}", "email": f"w{n}-{uuid.uuid4().hex[:8]}@example.com"},
            headers)
        assert response.status == 201, response.read()
        return response
    return send


@pytest.mark.slow  # each of these starts a service of two worker processes
async def test_two_command_workers_answer_on_one_port_and_any_of_them_counts_every_request(
        command_settings, tmp_path):
    service = Process("command-api", command_settings, tmp_path, args=("--workers", "2"))
    headers = admin_headers(command_settings)
    service.start()
    try:
        await service.ready()
        workers = workers_of(service.process.pid, 2)
        answered = send_until_each_worker_answered(service.port, workers, register(headers))
        sent = answered.total()
        assert len(answered) == 2 and all(n >= 3 for n in answered.values()), answered
        scrapes = scrape_each_worker(service.port, workers, headers)
        for pid, metrics in scrapes.items():
            assert sample(metrics, REQUESTS, route="/v1/customers", method="POST",
                          status="201") == sent, pid
            assert sample(metrics, "cqrs_commands_total", outcome="completed") == sent, pid
    finally:
        assert service.terminate() == 0, service.tail()


@pytest.mark.slow
async def test_query_workers_come_from_cqrs_workers_and_share_their_metrics(read_store,
                                                                           tmp_path):
    settings = Settings(mongo_url=read_store.mongo_url,
                        mongo_database=f"test_{uuid.uuid4().hex[:10]}",
                        auth_jwt_secret=TEST_JWT_SECRET, workers=2)  # CQRS_WORKERS=2
    service = Process("query-api", settings, tmp_path)
    headers = admin_headers(settings)
    service.start()

    def search(conn, n: int):
        conn.request("GET", f"/v1/customers?q=nobody{n}", headers=headers)
        response = conn.getresponse()
        assert response.status == 200, response.read()
        return response

    try:
        await service.ready()
        workers = workers_of(service.process.pid, 2)
        answered = send_until_each_worker_answered(service.port, workers, search)
        for pid, metrics in scrape_each_worker(service.port, workers, headers).items():
            assert sample(metrics, REQUESTS, route="/v1/customers", method="GET",
                          status="200") == answered.total(), pid
            # A gauge combined over the live workers, not one series per process.
            assert series(metrics, "cqrs_query_streams_open") == [({}, 0.0)], pid
    finally:
        assert service.terminate() == 0, service.tail()


@pytest.mark.slow
async def test_a_killed_worker_is_replaced_keeping_its_counts_and_sigterm_leaves_no_process(
        command_settings, tmp_path):
    service = Process("command-api", command_settings, tmp_path, args=("--workers", "2"))
    headers = admin_headers(command_settings)
    everything: list[psutil.Process] = []
    service.start()
    try:
        await service.ready()
        parent = psutil.Process(service.process.pid)
        workers = workers_of(parent.pid, 2)
        metrics_dir = workers[0].environ()["PROMETHEUS_MULTIPROC_DIR"]
        sent = send_until_each_worker_answered(service.port, workers, register(headers),
                                               at_least=1).total()

        workers[0].kill()  # SIGKILL: the worker has no chance to clean anything up
        workers[0].wait(10)
        replaced = workers_of(parent.pid, 2)
        assert workers[0].pid not in {w.pid for w in replaced}
        sent += send_until_each_worker_answered(service.port, replaced, register(headers),
                                                at_least=1).total()
        for metrics in scrape_each_worker(service.port, replaced, headers).values():
            assert sample(metrics, "cqrs_commands_total", outcome="completed") == sent

        everything = parent.children(recursive=True)
    finally:
        assert service.terminate() == 0, service.tail()
    gone, alive = psutil.wait_procs(everything, timeout=10)
    assert everything and not alive, alive
    assert "killing it" not in service.tail()  # each worker stopped on SIGTERM by itself
    assert not os.path.exists(metrics_dir)


@pytest.mark.slow
async def test_workers_stop_by_themselves_when_their_parent_is_killed(command_settings,
                                                                      tmp_path):
    service = Process("command-api", command_settings, tmp_path, args=("--workers", "2"))
    service.start()
    try:
        await service.ready()
        workers = workers_of(service.process.pid, 2)
    finally:
        service.process.send_signal(signal.SIGKILL)
        service.process.wait()
    gone, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, service.tail()


def test_a_worker_that_cannot_start_its_app_stops_the_service_with_exit_1():
    """Every replacement would fail the same way: the supervisor gives up instead of looping."""
    never_starts = "tests.no_such_module:create_app"  # each worker exits STARTUP_FAILURE
    service = subprocess.run([sys.executable, "-c", (
        "import sys; from shared.supervisor import serve_workers; "
        f"sys.exit(serve_workers({never_starts!r}, '127.0.0.1', 0, 2))")],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "CQRS_AUTH_DISABLED": "true"})
    assert service.returncode == 1, service.stderr
    assert "No module named 'tests.no_such_module'" in service.stderr, service.stderr


def _pauses_of_a_worker_that_keeps_dying(caplog, exits: int) -> list[float]:
    """Supervise one worker that exits with code 1 as soon as it starts, until it has exited
    `exits` times: the pause before each next start, as the supervisor logged it."""
    caplog.set_level(logging.WARNING, logger="shared.supervisor")
    dies = [sys.executable, "-c", "import sys; sys.exit(1)"]  # ignores the fd and pid after
    with supervisor.bind("127.0.0.1", 0) as sock, multiprocess_dir() as metrics_dir:
        watched = supervisor.Supervisor(dies, sock, 1, metrics_dir)

        def stop_after_the_exits() -> None:
            deadline = time.monotonic() + 60
            while len(_exits_logged(caplog)) < exits and time.monotonic() < deadline:
                time.sleep(0.05)
            watched.stop.set()

        threading.Thread(target=stop_after_the_exits, daemon=True).start()
        assert watched.run() == 0  # in this thread: it sets signal handlers
    return [float(m.group(1)) for m in _exits_logged(caplog)][:exits]


def _exits_logged(caplog) -> list[re.Match]:
    found = (re.search(r"starting another in ([0-9.]+) s", r.getMessage())
             for r in caplog.records)
    return [m for m in found if m]


def test_a_worker_that_keeps_dying_is_started_again_after_growing_pauses(caplog):
    """Not every POLL_S: each start costs a whole interpreter's imports."""
    assert _pauses_of_a_worker_that_keeps_dying(caplog, 3) == [0.5, 1.0, 2.0]


def test_a_worker_that_ran_steadily_is_replaced_at_once(caplog, monkeypatch):
    monkeypatch.setattr(supervisor, "STEADY_S", 0.0)  # every exit counts as after a long run
    assert _pauses_of_a_worker_that_keeps_dying(caplog, 3) == [0.0, 0.0, 0.0]


def test_the_restart_pause_doubles_up_to_its_cap():
    assert [supervisor.restart_pause_s(n) for n in range(9)] == [
        0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
