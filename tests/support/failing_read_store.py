"""A MongoDB-wire server that accepts every connection and fails every command: a read store
that is up but broken (a full disk, a crashed storage engine), which answers
`OperationFailure: internal server error` where a stopped one refuses the connection.

It speaks just enough of the wire protocol for a real driver: the handshake (`hello` over the
legacy OP_QUERY, and over OP_MSG afterwards) succeeds, so the driver selects the server; every
other command gets {ok: 0, errmsg: 'internal server error'}, signed with a `$clusterTime` as a
replica set's answers are (the binary signature is what used to reach the operator's screen)."""

from __future__ import annotations

import asyncio
import struct
import threading
from datetime import UTC, datetime

import bson
from bson.binary import Binary
from bson.timestamp import Timestamp

OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
MORE_TO_COME = 1 << 1
HANDSHAKES = {"hello", "ismaster"}
ERROR = {"ok": 0.0, "errmsg": "internal server error", "code": 1, "codeName": "InternalError"}


def _cluster_time() -> dict:
    return {"clusterTime": Timestamp(int(datetime.now(UTC).timestamp()), 1),
            "signature": {"hash": Binary(bytes(range(20))), "keyId": 7}}


def answer(command: dict) -> dict:
    if next(iter(command), "").lower() in HANDSHAKES:
        return {"ismaster": True, "isWritablePrimary": True, "helloOk": True,
                "maxBsonObjectSize": 16 * 1024 * 1024, "maxMessageSizeBytes": 48_000_000,
                "maxWriteBatchSize": 100_000, "localTime": datetime.now(UTC),
                "minWireVersion": 0, "maxWireVersion": 17, "ok": 1.0}
    return {**ERROR, "$clusterTime": _cluster_time()}


def _header(length: int, request_id: int, op_code: int) -> bytes:
    return struct.pack("<iiii", 16 + length, 0, request_id, op_code)


def _reply(request_id: int, op_code: int, body: bytes) -> bytes | None:
    if op_code == OP_QUERY:  # flags, collection name, skip, limit, then the command
        name_end = body.index(b"\0", 4)
        command = bson.decode(body[name_end + 9:])
        document = bson.encode(answer(command))
        reply = struct.pack("<iqii", 0, 0, 0, 1) + document
        return _header(len(reply), request_id, OP_REPLY) + reply
    if op_code == OP_MSG:  # flags, then sections; the command is the kind-0 one
        flags = struct.unpack_from("<I", body)[0]
        at, command = 4, {}
        while at < len(body):
            kind, size = body[at], struct.unpack_from("<i", body, at + 1)[0]
            if kind == 0:
                command = bson.decode(body[at + 1:at + 1 + size])
            at += 1 + size
        if flags & MORE_TO_COME:  # the client wants no answer
            return None
        reply = struct.pack("<I", 0) + b"\0" + bson.encode(answer(command))
        return _header(len(reply), request_id, OP_MSG) + reply
    return None


class FailingReadStore:
    """Serves on a free port of 127.0.0.1 from a thread of its own, until `stop()`."""

    def __init__(self) -> None:
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._stopping = asyncio.Event()
        self._connections: dict[asyncio.Task, asyncio.StreamWriter] = {}
        self._thread = threading.Thread(target=self._loop.run_until_complete,
                                        args=(self._serve(),), daemon=True)

    @property
    def mongo_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self) -> FailingReadStore:
        self._thread.start()
        self._started.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)
        self._loop.close()

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        await self._stopping.wait()
        server.close()
        for writer in self._connections.values():  # the driver's pooled connections stay open
            writer.close()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        self._connections[asyncio.current_task()] = writer
        try:
            while True:
                length, request_id, _, op_code = struct.unpack(
                    "<iiii", await reader.readexactly(16))
                reply = _reply(request_id, op_code, await reader.readexactly(length - 16))
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._connections.pop(asyncio.current_task(), None)
            writer.close()
