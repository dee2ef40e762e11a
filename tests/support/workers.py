"""Which worker process of `--workers N` answered a request, told from the outside: the
operating system knows which process holds the server end of a TCP connection, so the API
needs no field or header for it. A request is sent on a connection of its own, and the worker
holding the other end of that connection (kept open by HTTP keep-alive) answered it."""

from __future__ import annotations

import http.client
import json
import time
from collections import Counter
from collections.abc import Callable

import psutil
from prometheus_client.parser import text_string_to_metric_families

# A bound for a broken test, not a timing assumption: a worker still starting, on a busy
# machine, takes some seconds before it accepts anything.
DEADLINE_S = 90


def workers_of(parent_pid: int, count: int) -> list[psutil.Process]:
    """The worker processes of the service whose parent is `parent_pid`, once there are
    `count` of them."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        children = psutil.Process(parent_pid).children()
        if len(children) == count or time.monotonic() > deadline:
            assert len(children) == count, children
            return children
        time.sleep(0.1)


def answering_worker(conn: http.client.HTTPConnection, workers: list[psutil.Process],
                     port: int) -> int:
    """The pid of the worker holding the server end of `conn`, an open connection."""
    client_port = conn.sock.getsockname()[1]
    for worker in workers:
        for held in worker.net_connections(kind="tcp"):
            if held.laddr and held.laddr.port == port and held.raddr \
                    and held.raddr.port == client_port:
                return worker.pid
    raise AssertionError(f"no worker holds the connection from port {client_port}")


Send = Callable[[http.client.HTTPConnection, int], http.client.HTTPResponse]


def send_until_each_worker_answered(port: int, workers: list[psutil.Process], send: Send,
                                    at_least: int = 3) -> Counter[int]:
    """Send requests (`send(conn, n)` for the n-th, each on a new connection) until every
    worker answered `at_least` of them; how many each worker answered."""
    answered: Counter[int] = Counter()
    deadline = time.monotonic() + DEADLINE_S
    while min(answered[w.pid] for w in workers) < at_least:
        assert time.monotonic() < deadline, f"after {DEADLINE_S} s: {dict(answered)}"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            response = send(conn, answered.total())
            response.read()
            answered[answering_worker(conn, workers, port)] += 1
        finally:
            conn.close()
    return answered


def scrape_each_worker(port: int, workers: list[psutil.Process],
                       headers: dict[str, str]) -> dict[int, str]:
    """GET /metrics until each worker has answered one; each one's answer."""
    scrapes: dict[int, str] = {}
    deadline = time.monotonic() + DEADLINE_S
    while len(scrapes) < len(workers):
        assert time.monotonic() < deadline, f"after {DEADLINE_S} s only {sorted(scrapes)}"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", "/metrics", headers=headers)
            response = conn.getresponse()
            body = response.read().decode()
            assert response.status == 200, body
            scrapes.setdefault(answering_worker(conn, workers, port), body)
        finally:
            conn.close()
    return scrapes


def post_json(conn: http.client.HTTPConnection, path: str, body: dict,
              headers: dict[str, str]) -> http.client.HTTPResponse:
    conn.request("POST", path, body=json.dumps(body),
                 headers={**headers, "Content-Type": "application/json"})
    return conn.getresponse()


def series(metrics: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample called `name`, with its labels: a per-process gauge would show one per
    worker, each labelled with its pid."""
    return [(s.labels, s.value) for family in text_string_to_metric_families(metrics)
            for s in family.samples if s.name == name]


def sample(metrics: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 when none)."""
    return sum(s.value for family in text_string_to_metric_families(metrics)
               for s in family.samples
               if s.name == name and labels.items() <= s.labels.items())
