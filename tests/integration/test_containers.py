"""The same pipeline on the production backends (MySQL 8.4, Kafka in KRaft mode, MongoDB 7),
started by testcontainers. Skipped, with the reason, where no Docker engine is reachable."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from command_service.db.migrate import upgrade_to_head
from shared.config import Settings
from tests.scenarios import open_deposit_withdraw_and_see_the_views
from tests.stack import TEST_JWT_SECRET, Stack


def _docker_unavailable_reason() -> str | None:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception as exc:  # no client library, no socket, no daemon: all mean "skip"
        return f"no Docker engine reachable ({exc.__class__.__name__}: {str(exc)[:120]})"
    return None


_reason = _docker_unavailable_reason()
pytestmark = [pytest.mark.docker, pytest.mark.skipif(_reason is not None, reason=_reason or "")]


@pytest.fixture(scope="module")
def containers():
    from testcontainers.kafka import KafkaContainer
    from testcontainers.mongodb import MongoDbContainer
    from testcontainers.mysql import MySqlContainer

    with MySqlContainer("mysql:8.4", dbname="cqrs") as mysql, \
            KafkaContainer("confluentinc/cp-kafka:7.7.1").with_kraft() as kafka, \
            MongoDbContainer("mongo:7") as mongo:
        yield {
            "database_url": mysql.get_connection_url().replace("mysql+pymysql://",
                                                               "mysql+asyncmy://"),
            "kafka": kafka.get_bootstrap_server(),
            "mongo": mongo.get_connection_url(),
        }


async def test_the_pipeline_runs_on_mysql_kafka_and_mongodb(containers):
    settings = Settings(
        database_url=containers["database_url"],
        kafka_bootstrap_servers=containers["kafka"],
        kafka_enable_idempotence=True,  # real Kafka accepts the idempotent producer
        kafka_topic=f"events-{uuid.uuid4().hex[:8]}",
        mongo_url=containers["mongo"],
        mongo_database="cqrs_containers",
        auth_jwt_secret=TEST_JWT_SECRET,
    )
    await asyncio.to_thread(upgrade_to_head, settings.database_url)
    async with Stack(settings) as stack:
        await open_deposit_withdraw_and_see_the_views(stack)
