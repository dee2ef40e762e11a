"""The servers a bench run starts for itself: the broker (the embedded Tansu, or Apache Kafka
with BROKER=kafka) and SecantusDB (read store), each its own process on a free port, plus a
fresh write-model database per measurement (a SQLite file, or a new database on the
MySQL/MariaDB server named by CQRS_BENCH_MYSQL_URL)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from cli.servers.kafka import KafkaBroker
from cli.servers.secantus import SecantusReadStore
from cli.servers.tansu import TansuBroker
from command_service.db.migrate import upgrade_to_head
from shared.config import Settings

MYSQL_ENV = "CQRS_BENCH_MYSQL_URL"


@dataclass
class WriteDatabase:
    url: str
    backend: str  # "sqlite" or "mysql"
    _drop: str | None = None  # the MySQL database to drop afterwards


@dataclass
class Backends:
    """Everything a run needs; `settings()` hands out a fresh topic / group / read-model
    database per measurement so that no measurement sees another's data."""

    workdir: Path
    mysql_url: str | None = None
    broker: TansuBroker | KafkaBroker | None = None
    read_store: SecantusReadStore | None = None
    _databases: list[WriteDatabase] = field(default_factory=list)

    @classmethod
    async def start(cls, keep_logs_in: Path | None = None,
                    broker: str | None = None) -> Backends:
        workdir = Path(tempfile.mkdtemp(prefix="cqrs-bench-"))
        logs = keep_logs_in or workdir
        logs.mkdir(parents=True, exist_ok=True)
        backends = cls(workdir=workdir, mysql_url=os.environ.get(MYSQL_ENV) or None)
        kind = broker or "tansu"
        backends.broker = (KafkaBroker(workdir / "kafka", logs / "kafka.log", heap_mb=1024)
                           if kind == "kafka" else TansuBroker(logs / "tansu.log"))
        backends.read_store = SecantusReadStore(workdir / "readstore", logs / "secantus.log")
        try:
            await backends.broker.astart()
            await backends.read_store.astart()
        except BaseException:
            await backends.stop()
            raise
        return backends

    @property
    def write_backend(self) -> str:
        return "mysql" if self.mysql_url else "sqlite"

    @property
    def broker_kind(self) -> str:
        return self.broker.kind

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap_servers

    @property
    def mongo_url(self) -> str:
        return self.read_store.mongo_url

    async def new_write_database(self, label: str) -> WriteDatabase:
        """A new, migrated write model."""
        uid = uuid.uuid4().hex[:8]
        if not self.mysql_url:
            path = self.workdir / f"{label}-{uid}.db"
            db = WriteDatabase(f"sqlite+aiosqlite:///{path}", "sqlite")
        else:
            server = make_url(self.mysql_url)
            name = f"cqrs_bench_{label}_{uid}"[:64]
            admin = create_async_engine(server)
            try:
                async with admin.begin() as conn:
                    await conn.execute(sa.text(f"CREATE DATABASE `{name}`"))
            finally:
                await admin.dispose()
            url = server.set(database=name).render_as_string(hide_password=False)
            db = WriteDatabase(url, "mysql", _drop=name)
        self._databases.append(db)
        await asyncio.to_thread(upgrade_to_head, db.url)
        return db

    def no_write_database(self) -> WriteDatabase:
        """For a measurement of the read side only: a URL that is never opened."""
        return WriteDatabase(f"sqlite+aiosqlite:///{self.workdir / 'unused.db'}", "sqlite")

    def settings(self, database: WriteDatabase, label: str, **overrides) -> Settings:
        uid = uuid.uuid4().hex[:8]
        values = dict(
            database_url=database.url,
            kafka_bootstrap_servers=self.bootstrap,
            kafka_enable_idempotence=self.broker.idempotent,  # Tansu refuses InitProducerId
            kafka_topic=f"bench-{label}-{uid}",
            kafka_consumer_group=f"bench-{label}-{uid}",
            kafka_session_timeout_ms=2000,  # Tansu holds a group join for half of it
            mongo_url=self.mongo_url,
            mongo_database=f"bench_{label}_{uid}"[:63],
            log_level="WARNING",
            # The bench measures the pipeline, not authentication or rate limits (a build
            # without them ignores these: the settings ignore unknown names).
            auth_disabled=True,
            rate_limit_commands_per_s=0,  # measure capacity, not the per-client limit
            rate_limit_queries_per_s=0,
        )
        values.update(overrides)
        return Settings(**values)

    async def drop_write_database(self, database: WriteDatabase) -> None:
        if database._drop is None:
            path = make_url(database.url).database
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(OSError):
                    os.unlink(f"{path}{suffix}")
            return
        admin = create_async_engine(make_url(self.mysql_url))
        try:
            async with admin.begin() as conn:
                await conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{database._drop}`"))
        finally:
            await admin.dispose()
        database._drop = None

    async def stop(self) -> None:
        for database in self._databases:
            with contextlib.suppress(Exception):
                await self.drop_write_database(database)
        for server in (self.read_store, self.broker):
            if server is not None:
                await asyncio.to_thread(server.stop)
        shutil.rmtree(self.workdir, ignore_errors=True)
