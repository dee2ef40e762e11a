"""Apache Kafka itself, fetched and started by the project: one KRaft node that is broker and
controller at once, on free ports, with its log in a folder of ours.

Kafka is not packaged for Debian or PyPI; its jars come from Maven Central through the small
Maven project in `kafka_dist/pom.xml` (which pins the version). They are copied once into
`.cache/kafka/<hash of the pom>/lib`, so a second start downloads nothing, and run with the
machine's Java 17+ and a bounded heap. Topics are never created on first use
(`auto.create.topics.enable=false`), as on the production clusters our users run."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import uuid
from functools import cache
from pathlib import Path

from cli.servers.process import ServerProcess, answers, free_port

DISTRIBUTION = Path(__file__).with_name("kafka_dist")
POM = DISTRIBUTION / "pom.xml"
READY_LINE = b"Kafka Server started"
RESOLVE_TIMEOUT_S = 600


class KafkaUnavailable(RuntimeError):
    """Java 17+ or Maven is missing, or Maven could not resolve the jars (one line)."""


def cache_root() -> Path:
    """`.cache/` of the source checkout (where `make` runs), unless CQRS_CACHE_DIR says."""
    if configured := os.environ.get("CQRS_CACHE_DIR"):
        return Path(configured)
    checkout = Path(__file__).resolve().parents[2]
    base = checkout if (checkout / "pyproject.toml").exists() else Path.cwd()
    return base / ".cache"


@cache
def java_major_version() -> int | None:
    java = shutil.which("java")
    if java is None:
        return None
    try:
        shown = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', shown.stderr + shown.stdout)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major  # "1.8" is Java 8


def why_unavailable() -> str | None:
    """None when this machine can run the broker; otherwise the one-line reason."""
    version = java_major_version()
    if version is None:
        return "real Kafka needs Java 17 or newer, and no `java` was found on PATH"
    if version < 17:
        return f"real Kafka needs Java 17 or newer; `java` on PATH is Java {version}"
    if not (kafka_lib(resolve=False).is_dir() or shutil.which("mvn")):
        return "real Kafka's jars are fetched with Maven, and no `mvn` was found on PATH"
    return None


def kafka_lib(resolve: bool = True) -> Path:
    """The folder of the broker's jars, resolved from Maven Central on first use."""
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
    lib = cache_root() / "kafka" / digest / "lib"
    if lib.is_dir() or not resolve:
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaUnavailable(why_unavailable() or "no `mvn` on PATH")
    staging = lib.with_name(f"lib.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    argv = [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}", "-DincludeScope=runtime"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=RESOLVE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise KafkaUnavailable(f"Maven did not resolve Kafka's jars within "
                               f"{RESOLVE_TIMEOUT_S}s") from None
    if done.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        last = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
        raise KafkaUnavailable(f"Maven could not resolve Kafka's jars: {last[0][:300]}")
    staging.rename(lib)  # atomic: a half-copied folder is never taken for the cache
    return lib


def new_cluster_id() -> str:
    """What `kafka-storage random-uuid` prints (a random UUID, URL-safe base64 without
    padding), made here rather than by starting a JVM for it. Like Kafka's own Uuid, never
    one that starts with '-': the storage tool would read it as an option (1 start in 64
    failed with `--cluster-id: expected one argument`)."""
    while (cluster_id := base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
           ).startswith("-"):
        pass
    return cluster_id


class KafkaBroker(ServerProcess):
    """One combined broker+controller. Its data survives stop/start and kill -9 (unlike
    Tansu's), so restarting it on the same folder keeps every topic, message and offset."""

    name = "the Kafka broker"
    kind = "kafka"
    idempotent = True  # production runs the producer with idempotence on
    keeps_data = True

    def __init__(self, data_dir: Path, log_path: Path | None = None, port: int | None = None,
                 heap_mb: int = 512) -> None:
        self.data_dir = Path(data_dir)
        super().__init__(log_path or self.data_dir / "broker.log", port)
        self.controller_port = free_port()
        self.heap_mb = heap_mb
        self._lib = kafka_lib(resolve=False)
        self._log_offset = 0

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "kraft-log"

    def server_properties(self) -> dict[str, str]:
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
                         f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.log_dir),
            "auto.create.topics.enable": "false",
            # One node: every internal topic has one replica.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # A group forms at once, and the tests' short sessions (1 s and up) are allowed.
            "group.initial.rebalance.delay.ms": "0",
            "group.min.session.timeout.ms": "1000",
            "num.partitions": "1",
            # After a kill -9 the node restarts beside its own registration of the run before,
            # which the controller fences only once that session times out (9 s by default):
            # measured 13.8 s from start to ready after a kill, 5.0 s with these two.
            "broker.session.timeout.ms": "2000",
            "broker.heartbeat.interval.ms": "500",
        }

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lib = kafka_lib()
        config = self.data_dir / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in self.server_properties().items()))
        if not (self.log_dir / "meta.properties").exists():
            self._java("kafka.tools.StorageTool", "format", "-t", new_cluster_id(),
                       "-c", str(config))
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0

    def argv(self) -> list[str]:
        return [*self._jvm(), "kafka.Kafka", str(self.data_dir / "server.properties")]

    def is_ready(self) -> bool:
        """Listening is not enough: the node accepts connections before it serves metadata."""
        if not answers(self.port):
            return False
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            return READY_LINE in log.read()

    def _jvm(self) -> list[str]:
        return ["java", f"-Xms{min(256, self.heap_mb)}m", f"-Xmx{self.heap_mb}m",
                "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={DISTRIBUTION / 'log4j2.yaml'}",
                "-cp", f"{self._lib}/*"]

    def _java(self, main: str, *args: str) -> str:
        done = subprocess.run([*self._jvm(), main, *args], capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            raise KafkaUnavailable(f"{main} {args[0]} failed: "
                                   f"{(done.stderr or done.stdout).strip()[-300:]}")
        return done.stdout
