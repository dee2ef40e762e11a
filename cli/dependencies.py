"""One line, never a traceback, when a command cannot use what it needs.

Every CLI command (the operator commands, and the four processes at start-up) talks to some of
three dependencies: the write database, the broker and the read store. When one does not
answer, the operator needs to know which one, at which address, and which setting to change;
a 300-line traceback ending in `ServerSelectionTimeoutError` says none of that. This module is
the one place that recognises a dependency's "not reachable" errors (from the drivers, through
SQLAlchemy's wrapping and exception chains) and phrases them; likewise a write model that is
not there yet, and an operator command run where there is no stack to work on. What the
command prints for any other error is cli/failures.py's."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError
from pymongo.errors import ConnectionFailure
from sqlalchemy.engine import make_url

from command_service.db.errors import Meaning, meaning
from shared.backoff import Backoff
from shared.config import Settings


@dataclass(frozen=True)
class Dependency:
    name: str  # "the write database"
    setting: str  # the CQRS_* variable that says where it is
    address: str

    def line(self, reason: str, source: str = "") -> str:
        return f"cannot reach {self.name} at {self.address} ({self.setting}{source}): {reason}"


def write_database(settings: Settings) -> Dependency:
    url = make_url(settings.database_url)
    address = (url.database or "?") if url.get_backend_name() == "sqlite" else \
        f"{url.host or '127.0.0.1'}:{url.port or 3306}"
    return Dependency("the write database", "CQRS_DATABASE_URL", address)


def broker(settings: Settings) -> Dependency:
    return Dependency("the broker", "CQRS_KAFKA_BOOTSTRAP_SERVERS",
                      settings.kafka_bootstrap_servers)


def read_store(settings: Settings) -> Dependency:
    hosts = settings.mongo_url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    return Dependency("the read store", "CQRS_MONGO_URL", hosts)  # no credentials shown


class DependencyDown(Exception):
    def __init__(self, dependency: Dependency, reason: str) -> None:
        super().__init__(dependency.line(reason, source(dependency.setting)))
        self.dependency = dependency


MIGRATE_HINT = "run `cqrs-accounts migrate`, or `make dev` in this folder"


class NoWriteModel(Exception):
    """The write database is reachable but holds no write model (on SQLite: no file at all),
    because nothing was migrated there yet. A process waits for it as for a dependency (a
    migration may be running); an operator command says so at once."""

    def __init__(self, dependency: Dependency, reason: str) -> None:
        super().__init__(f"no write model at {dependency.address} ({dependency.setting}"
                         f"{source(dependency.setting)}): {reason}; {MIGRATE_HINT}")


LOCATION_SETTINGS = ("CQRS_DATABASE_URL", "CQRS_MONGO_URL", "CQRS_KAFKA_BOOTSTRAP_SERVERS")


class NoStack(Exception):
    """An operator command with nothing to work on: no `make dev` runs in this folder and no
    setting says where a stack is. The defaults would point it at whatever happens to listen
    on 27017 and 9092 (another clone's stack, a developer's own MongoDB), not at this one."""

    def __init__(self) -> None:
        super().__init__("no stack to work on: `make dev` is not running in this folder and "
                         f"none of {', '.join(LOCATION_SETTINGS)} is set; start `make dev` "
                         "here, or set them")


def require_a_stack() -> None:
    """For an operator command: raise NoStack unless a dev stack's file or a setting says
    where the stack is."""
    from cli.dev_settings import present

    if present() is None and not any(name in os.environ for name in LOCATION_SETTINGS):
        raise NoStack


def source(setting: str) -> str:
    """Where the address came from, when not from the environment: the dev stack's file."""
    from cli.dev_settings import value_from_file

    return ", from .data/dev.env" if setting not in os.environ and \
        value_from_file(setting) is not None else ""


def chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        stack.extend(e for e in (current.__cause__, current.__context__,
                                 getattr(current, "orig", None))  # SQLAlchemy's driver error
                     if isinstance(e, BaseException))


REFUSED_WORDING = ("refused", "connect call failed", f"[errno {errno.ECONNREFUSED}]")


def _reason(exc: BaseException) -> str:
    for e in chain(exc):
        text = str(e).lower()
        if isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == \
                errno.ECONNREFUSED or any(words in text for words in REFUSED_WORDING):
            return "connection refused"
        if isinstance(e, TimeoutError | KafkaTimeoutError) or "timed out" in text:
            return "no answer in time"
    if isinstance(exc, KafkaConnectionError):  # aiokafka keeps the socket error to itself
        return "no broker answered"
    return exc.__class__.__name__


def classify(exc: BaseException,
             settings: Settings) -> DependencyDown | NoWriteModel | NoStack | None:
    """The dependency `exc` says is unreachable (or that a write model or a stack is missing),
    or None when it is some other failure."""
    if isinstance(exc, DependencyDown | NoWriteModel | NoStack):
        return exc
    for e in chain(exc):
        if isinstance(e, ConnectionFailure):  # pymongo: ServerSelectionTimeoutError and kin
            return DependencyDown(read_store(settings), _reason(e))
        if isinstance(e, KafkaConnectionError | NodeNotReadyError | KafkaTimeoutError):
            return DependencyDown(broker(settings), _reason(e))
        if meaning(e) is Meaning.UNREACHABLE:  # what a database error means: db/errors.py
            return DependencyDown(write_database(settings), _reason(exc))
    return None


# -- probes: the four processes check what they need before they start serving --------------

async def probe_database(settings: Settings) -> None:
    """The write database answers and holds the write model. A SQLite file that is not there
    is not created (connecting would): a command that only reads leaves nothing behind."""
    from command_service.db.engine import create_engine, read_only

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        if not Path(url.database or "").is_file():
            raise NoWriteModel(write_database(settings), "the file does not exist")
        if not _sqlite_has_events_table(Path(url.database)):
            raise NoWriteModel(write_database(settings), "it has no tables")
    engine = create_engine(settings)
    try:
        async with read_only(engine).connect() as conn:
            if not await conn.run_sync(lambda sync: sa.inspect(sync).has_table("events")):
                raise NoWriteModel(write_database(settings), "it has no tables")
    finally:
        await engine.dispose()


def _sqlite_has_events_table(path: Path) -> bool:
    """Read-only: the engine's first connection would switch a file with no tables to WAL
    mode, writing to a file the user only asked us to read. A file this cannot open read-only
    is left to the engine to judge (True)."""
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro",
                                                uri=True)) as conn:
            return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                "name = 'events'").fetchone() is not None
    except sqlite3.Error:
        return True


async def probe_broker(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers,
                                request_timeout_ms=5000)
    try:
        await admin.start()
    finally:
        await admin.close()


async def probe_read_store(settings: Settings) -> None:
    from shared.readmodel import make_mongo_client

    client = make_mongo_client(settings)
    try:
        await client.admin.command("ping")
    finally:
        await client.close()


STARTUP_BACKOFF = Backoff(first_s=0.2, max_s=5.0)
PROBES: dict[str, Callable[[Settings], Awaitable[None]]] = {
    "database": probe_database, "broker": probe_broker, "read_store": probe_read_store}
DEPENDENCY_OF = {"database": write_database, "broker": broker, "read_store": read_store}


async def wait_until_reachable(settings: Settings, needed: list[str], wait_s: float) -> None:
    """Probe each dependency in `needed` until it answers, for at most `wait_s` seconds in all
    (dependencies may start after us); raise DependencyDown for the first one that never did."""
    deadline = asyncio.get_running_loop().time() + wait_s
    for name in needed:
        failures = 0
        while True:
            try:
                await PROBES[name](settings)
                break
            except Exception as exc:
                failures += 1
                pause = STARTUP_BACKOFF.delay_s(failures)
                if asyncio.get_running_loop().time() + pause > deadline:
                    raise classify(exc, settings) or DependencyDown(
                        DEPENDENCY_OF[name](settings), _reason(exc)) from None
                await asyncio.sleep(pause)
