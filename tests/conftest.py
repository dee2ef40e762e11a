"""Real servers for the integration tests, started once per session on free ports: the broker
(the embedded Tansu, and Apache Kafka where Java 17+ and Maven are at hand: tests that touch the
broker run on each), the SecantusDB read store, and a fresh write-model database per test, on
SQLite and, when CQRS_TEST_MYSQL_URL is set, on that MySQL/MariaDB server (a uniquely named
database, dropped afterwards). The launchers are `cli/servers/`; `tests/support/` says which
backends run and reports them."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
import pytest_asyncio
import sqlalchemy as sa
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from command_service.db.engine import create_engine
from command_service.db.migrate import upgrade_to_head
from shared.config import Settings
from shared.kafka import ensure_topic, make_producer
from shared.readmodel import ensure_indexes, make_mongo_client
from tests.stack import TEST_JWT_SECRET
from tests.support.backends import (
    BROKER_KINDS,
    MYSQL_URL,
    WRITE_BACKENDS,
    new_broker,
    new_read_store,
)
from tests.support.published_events import published_message_errors

pytest_plugins = ["tests.support.report", "tests.support.pairs", "tests.support.order"]

@pytest.fixture(scope="session", params=BROKER_KINDS)
def broker(request, tmp_path_factory):
    """The session's broker of one kind; pytest runs the tests of one kind together."""
    server = new_broker(request.param, tmp_path_factory.mktemp(f"broker-{request.param}"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def spare_broker(broker, tmp_path):
    """A broker of the session's kind that is the test's own, to stop, kill or wipe."""
    server = new_broker(broker.kind, tmp_path / f"spare-{broker.kind}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def read_store(tmp_path_factory):
    server = new_read_store(tmp_path_factory.mktemp("readstore"))
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture(params=WRITE_BACKENDS)
async def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'write.db'}"
        await asyncio.to_thread(upgrade_to_head, url)
        yield url
        await _check_published_events(url)
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
        await _check_published_events(url)
    finally:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        await admin.dispose()


async def _check_published_events(url: str) -> None:
    """Every message the test made the command service write must hold to docs/events/."""
    if problems := await published_message_errors(url):
        pytest.fail("messages that break the published event contract:\n" +
                    "\n".join(problems[:20]), pytrace=False)


@pytest_asyncio.fixture
async def settings(database_url, broker, read_store):
    """Each test gets its own topic, consumer group and read-model database."""
    uid = uuid.uuid4().hex[:10]
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_enable_idempotence=broker.idempotent,  # on for Kafka, as in production
        kafka_topic=f"events-{uid}",
        kafka_topic_partitions=4,
        kafka_consumer_group=f"projector-{uid}",
        kafka_session_timeout_ms=2000,  # Tansu holds a group join for half of it
        mongo_url=read_store.mongo_url,
        mongo_database=f"test_{uid}",
        relay_idle_poll_ms=10,
        relay_lease_s=3,
        projector_poll_ms=50,
        auth_jwt_secret=TEST_JWT_SECRET,
        # Some tests send 1,000 commands at once as one subject; test_auth.py checks the limit.
        rate_limit_burst=100_000,
        # Tests poll views in tight loops as one subject; test_query_rate_limit.py checks the limit.
        rate_limit_query_burst=100_000,
    )
    yield settings
    if broker.keeps_data:  # Kafka keeps every test's topic for the session otherwise
        await delete_topic(settings)


async def delete_topic(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers,
                                request_timeout_ms=5000)
    with contextlib.suppress(Exception):  # never created, or the broker was stopped
        await admin.start()
        await admin.delete_topics([settings.kafka_topic])
    with contextlib.suppress(Exception):
        await admin.close()


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


@pytest_asyncio.fixture
async def producer(settings):
    """A started producer on the suite's topic, for tests that drive the relay themselves."""
    await ensure_topic(settings)
    producer = make_producer(settings)
    await producer.start()
    yield producer
    await producer.stop()
