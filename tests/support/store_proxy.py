"""A TCP proxy in front of the read store, served in the test's event loop: it counts the
commands a service sends (by name and collection, read from the MongoDB wire messages), and
it can fail like a store does, without stopping the session's read store:
- `refuse()`: every connection is closed and new ones are closed at once (a store that died);
- `silence()`: connections stay open and nothing is answered (a store that hangs);
- `restore()`: forwarding again."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import Counter

import bson

OP_MSG = 2013


def command_of(message: bytes) -> tuple[str, str | None] | None:
    """(command name, collection) of an OP_MSG request, from its body section."""
    if struct.unpack_from("<i", message, 12)[0] != OP_MSG:
        return None
    at = 20  # header, then flags
    while at < len(message):
        kind = message[at]
        size = struct.unpack_from("<i", message, at + 1)[0]
        if kind == 0:
            command = bson.decode(message[at + 1:at + 1 + size])
            name = next(iter(command))
            target = command[name]
            return name, target if isinstance(target, str) else None
        at += 1 + size
    return None


class StoreProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.commands: Counter[tuple[str, str | None]] = Counter()
        self.mode = "forward"
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()
        self.port = 0

    def mongo_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def finds(self, *collections: str) -> int:
        return sum(n for (name, target), n in self.commands.items()
                   if name == "find" and target in collections)

    async def __aenter__(self) -> StoreProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info) -> None:
        self._server.close()
        self._close_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def refuse(self) -> None:
        self.mode = "refuse"
        self._close_all()

    def silence(self) -> None:
        self.mode = "silence"

    def restore(self) -> None:
        # A silenced connection swallowed requests its client may still wait for: new ones.
        if self.mode == "silence":
            self._close_all()
        self.mode = "forward"

    def _close_all(self) -> None:
        for writer in list(self._writers):
            writer.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":
            writer.close()
            return
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        self._writers.add(up_writer)
        pumps = [asyncio.create_task(self._requests(reader, up_writer)),
                 asyncio.create_task(self._pump(up_reader, writer))]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
            self._tasks.discard(task)
        for each in (writer, up_writer):
            self._writers.discard(each)
            each.close()

    async def _requests(self, reader: asyncio.StreamReader, up: asyncio.StreamWriter) -> None:
        """Client to store, one whole message at a time so that each is counted."""
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                header = await reader.readexactly(16)
                message = header + await reader.readexactly(
                    struct.unpack_from("<i", header)[0] - 16)
                if self.mode != "forward":
                    continue  # a silent store reads and never answers
                if (command := command_of(message)) is not None:
                    self.commands[command] += 1
                up.write(message)
                await up.drain()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                if self.mode == "forward":
                    writer.write(chunk)
                    await writer.drain()
