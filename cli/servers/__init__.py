"""Launchers of the backend servers the dev stack, the tests and the bench start for
themselves: Apache Kafka (`kafka`), the embedded Tansu broker (`tansu`) and the SecantusDB read
store (`secantus`), each a `process.ServerProcess`."""
