"""The backend launchers of cli/servers: the port check of `dev`, stopping a server that
ignores SIGTERM, and the Kafka launcher's configuration and jar cache."""

from __future__ import annotations

import os
import socket
import sys
import time

import pytest

from cli.servers import kafka
from cli.servers.process import ServerProcess, free_port, port_is_free


def test_a_port_whose_last_connection_lingers_in_time_wait_is_free():
    """`make dev` stopped after a client held a keep-alive connection that the server closed,
    then started again: the old check refused, 'already in use', while nothing listened."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's listener
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server closes first: its end of the connection enters TIME_WAIT
    time.sleep(0.05)
    client.close()
    server.close()
    time.sleep(0.05)

    with socket.socket() as naive, pytest.raises(OSError):  # the refusal, reproduced
        naive.bind(("127.0.0.1", port))
    assert port_is_free(port)  # bound as uvicorn binds (SO_REUSEADDR)


def test_a_port_something_listens_on_is_not_free():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        assert not port_is_free(holder.getsockname()[1])


class Stubborn(ServerProcess):
    """Listens, and ignores SIGTERM."""

    name = "a server that ignores SIGTERM"

    def argv(self) -> list[str]:
        return [sys.executable, "-c", (
            "import signal, socket, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            f"s = socket.socket(); s.bind(('127.0.0.1', {self.port})); s.listen()\n"
            "time.sleep(600)\n")]


def test_a_server_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path):
    server = Stubborn(tmp_path / "stubborn.log")
    server.start()
    started = time.monotonic()
    server.stop(timeout_s=0.5)
    assert server.process.returncode == -9 and time.monotonic() - started < 5
    assert port_is_free(server.port)


def test_the_kafka_broker_never_creates_topics_on_first_use_and_has_a_bounded_heap(tmp_path):
    broker = kafka.KafkaBroker(tmp_path, heap_mb=384, port=free_port())
    config = broker.server_properties()
    assert config["auto.create.topics.enable"] == "false"
    assert config["process.roles"] == "broker,controller"
    assert config["log.dirs"] == str(tmp_path / "kraft-log")
    assert "-Xmx384m" in broker._jvm()


@pytest.mark.skipif(kafka.why_unavailable() is not None,
                    reason=f"real Kafka unavailable here: {kafka.why_unavailable()}")
def test_the_second_start_of_kafka_downloads_nothing(monkeypatch):
    kafka.kafka_lib()  # resolved (or already cached) by the session
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))  # no mvn, no network tool
    lib = kafka.kafka_lib()
    assert any(lib.glob("kafka_2.13-*.jar")) and any(lib.glob("kafka-server-*.jar"))
