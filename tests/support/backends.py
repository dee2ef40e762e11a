"""Which backends the suite runs on, and how a test gets a server of each kind.

Every test that touches the broker runs once per broker kind: the embedded Tansu always, and
Apache Kafka whenever this machine has Java 17+ and Maven (on CI: always). A new kind of
broker is one more entry in `new_broker`, not a copy of the tests."""

from __future__ import annotations

import os
from pathlib import Path

from cli.servers.kafka import KafkaBroker, why_unavailable
from cli.servers.process import ServerProcess
from cli.servers.secantus import SecantusReadStore
from cli.servers.tansu import TansuBroker

MYSQL_URL = os.environ.get("CQRS_TEST_MYSQL_URL")
WRITE_BACKENDS = ["sqlite", "mysql"] if MYSQL_URL else ["sqlite"]
# CQRS_TEST_BROKERS narrows the brokers (e.g. "tansu" for a quick local run).
_WANTED_BROKERS = [b.strip() for b in os.environ.get("CQRS_TEST_BROKERS", "tansu,kafka")
                   .split(",") if b.strip()]
KAFKA_UNAVAILABLE = why_unavailable() if "kafka" in _WANTED_BROKERS else "not in CQRS_TEST_BROKERS"
BROKER_KINDS = [kind for kind in _WANTED_BROKERS
                if kind == "tansu" or (kind == "kafka" and KAFKA_UNAVAILABLE is None)]
# CI names what must have run (e.g. "mysql,kafka"): a required backend that ran no test
# fails the session instead of passing quietly on the others.
REQUIRED = {b.strip() for b in os.environ.get("CQRS_TEST_REQUIRE_BACKENDS", "").split(",")
            if b.strip()}


def backend_params(item) -> dict[str, str]:
    """The backends a collected test runs on, by the fixture that names each one: `broker`
    (tansu/kafka) and `database_url` (sqlite/mysql), for those it uses."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    return {name: str(params[name]) for name in ("broker", "database_url") if name in params}


def new_broker(kind: str, folder: Path) -> TansuBroker | KafkaBroker:
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "kafka":
        return KafkaBroker(folder, folder / "kafka.log")
    return TansuBroker(folder / "tansu.log")


def new_read_store(folder: Path) -> SecantusReadStore:
    return SecantusReadStore(folder / "data", folder / "secantus.log")


def restart_empty(broker: ServerProcess) -> None:
    """Stop the broker and start it on the same address with nothing in it: no topic, no
    message, no committed offset (what a broker that lost its disk looks like)."""
    broker.stop()
    if isinstance(broker, KafkaBroker):
        import shutil

        shutil.rmtree(broker.log_dir)
    broker.start()
