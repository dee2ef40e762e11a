"""A port that is certainly closed, for as long as a test needs it.

A port found free a moment ago (or a well-known one, like 27017) may be served by anything by
the time a command connects to it: another test, another clone's stack, a developer's own
MongoDB. A socket that is bound but never listens holds the port, so every connection to it is
refused until the test is done."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def closed_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]
