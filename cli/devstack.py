"""`cqrs-accounts dev`: the whole system on one laptop, in the foreground.

SQLite under the data directory is the write model and SecantusDB the read store; the broker
is the embedded Tansu (the default: it needs nothing but Python) or, with `--broker kafka`, a
real Apache Kafka that the project fetches and starts itself (needs Java 17+). Then the four
processes of the system.

Kafka keeps its log under the data directory, so a restart finds the topic and every offset as
they were. Tansu keeps nothing on disk, so every start is a new, empty broker: events the
previous broker held but the read side had not applied would be lost. A clean stop therefore
drains (outbox empty, views caught up) and records how far the read side got; the next start
on a broker without that history re-publishes everything after that point through the relay's
normal path, and the version guards skip what was already applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from pydantic import SecretStr
from rich.console import Console

from cli import dev_settings
from cli.dev_banner import DEV_TOKEN_TTL_S, welcome
from cli.dev_secret import dev_secret
from cli.servers import kafka
from cli.servers.process import ServerProcess, free_port, port_is_free, stop_process
from cli.servers.secantus import SecantusReadStore
from cli.servers.tansu import TansuBroker
from command_service import event_log
from command_service.db.engine import create_engine
from command_service.db.migrate import upgrade_to_head
from command_service.outbox.backlog import outbox_backlog, resend_from
from shared.auth import ADMIN, mint_token
from shared.config import Settings
from shared.readmodel import ACCOUNTS, CUSTOMERS, make_mongo_client

console = Console()
DRAIN_TIMEOUT_S = 15.0
BROKERS = ("tansu", "kafka")
DEFAULT_BROKER_PORT, DEFAULT_READ_STORE_PORT = 9092, 27017  # the settings' defaults


def _default_if_free(port: int) -> int | None:
    return port if port_is_free(port) else None


@contextlib.asynccontextmanager
async def _default_ports_claimed() -> AsyncIterator[None]:
    """Held from the check of the default ports until the servers on them answer: two stacks
    started at once (two clones, two test workers) would both find 9092 free, and the second
    broker would then fail to bind, or its start take the first one's answer for its own. The
    operating system lets go of the lock if the process dies."""
    with open(Path(tempfile.gettempdir()) / "cqrs-accounts-dev-ports.lock", "a") as lock:
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        yield


class PortTaken(Exception):
    pass


class BrokerUnavailable(Exception):
    """`--broker kafka` on a machine that cannot run it (one line saying why)."""


async def views_caught_up(settings: Settings, after_position: int) -> bool:
    """True when every aggregate changed after `after_position` shows its latest version in
    its primary view (account view / customer view)."""
    engine = create_engine(settings)
    client = make_mongo_client(settings)
    try:
        latest = await event_log.latest_versions(engine, after_position)
        db = client[settings.mongo_database]
        for kind, collection in (("account", ACCOUNTS), ("customer", CUSTOMERS)):
            wanted = {agg: version for (agg_type, agg), version in latest.items()
                      if agg_type == kind}
            if not wanted:
                continue
            seen = {doc["_id"]: doc.get("version", 0) async for doc in db[collection].find(
                {"_id": {"$in": list(wanted)}}, {"version": 1})}
            if any(seen.get(agg, 0) < version for agg, version in wanted.items()):
                return False
        return True
    finally:
        await client.close()
        await engine.dispose()


async def last_position(settings: Settings) -> int:
    engine = create_engine(settings)
    try:
        return await event_log.last_position(engine)
    finally:
        await engine.dispose()


class DevStack:
    def __init__(self, data_dir: str, command_port: int, query_port: int,
                 broker: str = "tansu") -> None:
        self.data = Path(data_dir).resolve()
        self.command_port, self.query_port = command_port, query_port
        self.broker_kind = broker
        self.children: dict[str, subprocess.Popen] = {}
        self.servers: dict[str, ServerProcess] = {}
        self.checkpoint = self.data / "projected-position"
        self.last_broker = self.data / "broker"  # which kind of broker holds the history

    def _check(self) -> None:
        if self.broker_kind == "kafka" and (reason := kafka.why_unavailable()):
            raise BrokerUnavailable(f"--broker kafka: {reason}")
        for port, role, flag in ((self.command_port, "command service", "--command-port"),
                                 (self.query_port, "query service", "--query-port")):
            if not port_is_free(port):
                raise PortTaken(f"port {port} (the {role}) is already in use; stop what holds "
                                f"it or choose another with {flag}")

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        # Own session: Ctrl-C reaches only us, and we stop the children in a safe order.
        process = subprocess.Popen(argv, env=env, start_new_session=True)
        self.children[name] = process
        return process

    async def run(self) -> int:
        self._check()
        self.data.mkdir(parents=True, exist_ok=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            settings = await self._start_backends()
            await self._start_processes(settings)
            self._print_welcome()
            await self._wait_for_stop_or_crash(stop)
            await self._drain(settings)
            return 0
        except (RuntimeError, kafka.KafkaUnavailable) as exc:
            console.print(f"[red]dev stack failed:[/red] {exc}", highlight=False)
            return 1
        finally:
            await self._stop_all()

    def _new_broker(self) -> TansuBroker | kafka.KafkaBroker:
        # The settings' default ports when they are free, so that any client finds the stack.
        logs, port = self.data / "logs", _default_if_free(DEFAULT_BROKER_PORT)
        if self.broker_kind == "kafka":
            return kafka.KafkaBroker(self.data / "kafka", logs / "broker.log", port=port)
        return TansuBroker(logs / "broker.log", port=port)

    async def _start_backends(self) -> Settings:
        if self.broker_kind == "kafka" and not kafka.kafka_lib(resolve=False).is_dir():
            console.print("fetching Apache Kafka's jars from Maven Central (once)…")
        async with _default_ports_claimed():
            broker = self.servers["broker"] = self._new_broker()
            store = self.servers["read-store"] = SecantusReadStore(
                self.data / "readstore", self.data / "logs" / "read-store.log",
                port=_default_if_free(DEFAULT_READ_STORE_PORT))
            await asyncio.gather(broker.astart(), store.astart())
        self.env = {
            **os.environ,
            "CQRS_DATABASE_URL": f"sqlite+aiosqlite:///{self.data / 'write.db'}",
            "CQRS_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "CQRS_KAFKA_ENABLE_IDEMPOTENCE": str(broker.idempotent).lower(),
            "CQRS_MONGO_URL": store.mongo_url,
            "CQRS_MONGO_DATABASE": os.environ.get("CQRS_MONGO_DATABASE", "cqrs_accounts"),
            "CQRS_LOG_FORMAT": os.environ.get("CQRS_LOG_FORMAT", "text"),
        }
        settings = self._configure_auth(Settings(**{
            k.removeprefix("CQRS_").lower(): v for k, v in self.env.items()
            if k.startswith("CQRS_")}))
        await asyncio.to_thread(upgrade_to_head, settings.database_url)
        await self._refeed(settings, broker)
        dev_settings.write(self.data, self.env)  # for the operator commands of other terminals
        return settings

    async def _refeed(self, settings: Settings, broker: TansuBroker | kafka.KafkaBroker) -> None:
        """A broker without the history (Tansu's every start, or a switch of broker kind):
        re-publish what the read side may not have applied."""
        previous = self.last_broker.read_text().strip() if self.last_broker.exists() else None
        if not (broker.keeps_data and previous == self.broker_kind):
            since = int(self.checkpoint.read_text()) if self.checkpoint.exists() else 0
            engine = create_engine(settings)
            try:
                resent = await resend_from(engine, since + 1, settings.kafka_topic)
            finally:
                await engine.dispose()
            if resent:
                console.print(f"re-publishing {resent} event(s) after position {since} "
                              "to the new broker")
        # Only once the history is queued: a start that failed before re-feeds next time.
        self.last_broker.write_text(self.broker_kind)

    def _configure_auth(self, settings: Settings) -> Settings:
        """Authentication stays on in dev. Unless the environment configures a key (or turns
        authentication off), a development secret is made once and kept under the data
        directory, so tokens stay valid across restarts; the banner prints an admin token."""
        self.auth_disabled, self.admin_token = settings.auth_disabled, None
        if settings.auth_disabled:
            return settings
        if not (settings.auth_jwt_secret.get_secret_value() or settings.auth_public_key
                or settings.auth_jwks_file):
            secret = dev_secret(self.data)
            self.env["CQRS_AUTH_JWT_SECRET"] = secret
            settings = settings.model_copy(update={"auth_jwt_secret": SecretStr(secret)})
        if settings.auth_jwt_secret.get_secret_value():
            self.admin_token = mint_token(settings, subject="dev-admin", scopes=[ADMIN],
                                          ttl_s=DEV_TOKEN_TTL_S)
        return settings

    async def _start_processes(self, settings: Settings) -> None:
        cli = [sys.executable, "-m", "cli.main"]
        self.relay_port, self.projector_port = free_port(), free_port()
        self._spawn("command-api", [*cli, "command-api", "--port", str(self.command_port)],
                    self.env)
        self._spawn("query-api", [*cli, "query-api", "--port", str(self.query_port)], self.env)
        self._spawn("relay", [*cli, "relay", "--port", str(self.relay_port)], self.env)
        self._spawn("projector", [*cli, "projector", "--port", str(self.projector_port)],
                    self.env)
        ports = {"command-api": self.command_port, "query-api": self.query_port,
                 "relay": self.relay_port, "projector": self.projector_port}
        async with httpx.AsyncClient(timeout=1.0) as http:
            for name, port in ports.items():
                await self._wait_ready(http, name, port)

    async def _wait_ready(self, http: httpx.AsyncClient, name: str, port: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.children[name].poll() is not None:
                raise RuntimeError(f"{name} exited with code {self.children[name].returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{name} was not ready on port {port} within 60s")

    def _print_welcome(self) -> None:
        # soft_wrap: the token must stay on one line, whatever the terminal's width.
        console.print(welcome(self), highlight=False, soft_wrap=True)

    async def _wait_for_stop_or_crash(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for name, process in self.children.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited unexpectedly with code "
                                       f"{process.returncode} (see its output above)")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
        console.print("\nstopping: draining the outbox and the projector…")

    async def _drain(self, settings: Settings) -> None:
        """No new commands, then wait until the outbox is sent and the views caught up, and
        remember the position they reached."""
        self._terminate("command-api")
        target = await last_position(settings)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        engine = create_engine(settings)
        try:
            while time.monotonic() < deadline:
                unsent, _ = await outbox_backlog(engine)
                previous = int(self.checkpoint.read_text()) if self.checkpoint.exists() else 0
                if unsent == 0 and await views_caught_up(settings, previous):
                    self.checkpoint.write_text(str(target))
                    return
                await asyncio.sleep(0.2)
        finally:
            await engine.dispose()
        console.print("[yellow]the read side did not catch up in time; it will be re-fed "
                      "from the event log at the next start[/yellow]")

    def _terminate(self, name: str) -> None:
        stop_process(self.children.get(name))

    async def _stop_all(self) -> None:
        for name in ("command-api", "query-api", "relay", "projector"):
            await asyncio.to_thread(self._terminate, name)
        dev_settings.remove(self.data)
        for name in ("read-store", "broker"):
            if name in self.servers:
                await asyncio.to_thread(self.servers[name].stop)
