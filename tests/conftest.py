"""Real servers for the integration tests, started once per session on free ports:
the Tansu broker and the SecantusDB read store (both from PyPI), and a fresh write-model
database per test, on SQLite and, when CQRS_TEST_MYSQL_URL is set, on that MySQL/MariaDB server
(a uniquely named database, dropped afterwards)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from cli.devstack import broker_command, free_port, read_store_command, stop_process
from command_service.db.engine import create_engine
from command_service.db.migrate import upgrade_to_head
from shared.config import Settings
from shared.readmodel import ensure_indexes, make_mongo_client

MYSQL_URL = os.environ.get("CQRS_TEST_MYSQL_URL")
# Authentication stays on in the tests: the Stack's HTTP clients carry an admin token signed
# with this secret (tests/integration/test_auth*.py mint their own tokens with it).
TEST_JWT_SECRET = "test-secret-for-the-suite-only-0123456789abcdef"
BACKENDS = ["sqlite", "mysql"] if MYSQL_URL else ["sqlite"]


def _wait_for_port(port: int, process: subprocess.Popen, name: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not open port {port}")


class ServerProcess:
    """A backend server the tests can stop and start again on the same port."""

    def __init__(self, name: str, argv_for_port, log_path: Path) -> None:
        self.name, self._argv_for_port, self._log_path = name, argv_for_port, log_path
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self._log_path, "ab")  # noqa: SIM115 (the child process owns it)
        self.process = subprocess.Popen(self._argv_for_port(self.port), stdout=log, stderr=log)
        _wait_for_port(self.port, self.process, self.name)

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture(scope="session")
def broker(tmp_path_factory) -> ServerProcess:
    server = ServerProcess("tansu", broker_command, tmp_path_factory.mktemp("logs") / "tansu.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def read_store(tmp_path_factory) -> ServerProcess:
    storage = tmp_path_factory.mktemp("readstore")
    server = ServerProcess("secantus", lambda port: read_store_command(port, str(storage)),
                           tmp_path_factory.mktemp("logs") / "secantus.log")
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture(params=BACKENDS)
async def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'write.db'}"
        await asyncio.to_thread(upgrade_to_head, url)
        yield url
        return
    server = make_url(MYSQL_URL)
    name = f"cqrs_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(server)
    async with admin.begin() as conn:
        await conn.execute(sa.text(f"CREATE DATABASE `{name}`"))
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(upgrade_to_head, url)
        yield url
    finally:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        await admin.dispose()


@pytest.fixture
def settings(database_url, broker, read_store) -> Settings:
    """Each test gets its own topic, consumer group and read-model database."""
    uid = uuid.uuid4().hex[:10]
    return Settings(
        database_url=database_url,
        kafka_bootstrap_servers=f"127.0.0.1:{broker.port}",
        kafka_enable_idempotence=False,
        kafka_topic=f"events-{uid}",
        kafka_topic_partitions=4,
        kafka_consumer_group=f"projector-{uid}",
        kafka_session_timeout_ms=2000,  # Tansu holds a group join for half of it
        mongo_url=f"mongodb://127.0.0.1:{read_store.port}/?directConnection=true",
        mongo_database=f"test_{uid}",
        relay_idle_poll_ms=10,
        relay_lease_s=3,
        projector_poll_ms=50,
        auth_jwt_secret=TEST_JWT_SECRET,
        # Some tests send 1,000 commands at once as one subject; test_auth.py checks the limit.
        rate_limit_burst=100_000,
    )


@pytest_asyncio.fixture
async def engine(settings):
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def read_db(settings):
    client = make_mongo_client(settings)
    db = client[settings.mongo_database]
    await ensure_indexes(db)
    yield db
    await client.drop_database(settings.mongo_database)
    await client.close()
