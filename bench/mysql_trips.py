"""Counts the round trips between this process's MySQL clients and the server, on the wire.

A TCP proxy in front of the server: the MySQL protocol is strictly request, then response
(asyncmy never pipelines), so each time the client speaks again after the server has
answered is one round trip, whatever the packet is (a query, a ping, a COMMIT, a ROLLBACK on
a connection's return to the pool). The count cannot miss what a driver- or SQLAlchemy-level
counter would: a pre-ping, a reset on return.

    async with RoundTripCounter("127.0.0.1", 3306) as counter:
        url = url.set(host=counter.host, port=counter.port)
        ...
        before = counter.total
        await deposit()
        trips = counter.total - before
"""

from __future__ import annotations

import asyncio
import contextlib


class RoundTripCounter:
    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.base_events.Server | None = None
        self._pumps: set[asyncio.Task] = set()
        self.total = 0
        self.connections = 0  # opened through the proxy, ever
        self._lose_answer_to: bytes | None = None
        self._stop_answering_at: bytes | None = None
        self.host = "127.0.0.1"
        self.port = 0

    async def __aenter__(self) -> RoundTripCounter:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def lose_answer_to(self, request: bytes) -> None:
        """The next request that starts with `request` (e.g. b"COMMIT") reaches the server,
        and its answer is dropped and the connection closed: what a client sees when a server
        dies, or the network fails, right after doing what it was asked."""
        self._lose_answer_to = request

    def stop_answering_at(self, request: bytes) -> None:
        """The next request that starts with `request` reaches the server, and from then on
        nothing the server says reaches the client, while the connection stays open: a server
        (or a network) that hangs in the middle of a conversation."""
        self._stop_answering_at = request

    async def __aexit__(self, *exc_info) -> None:
        assert self._server is not None
        self._server.close()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._server.wait_closed()

    async def _serve(self, client_r: asyncio.StreamReader,
                     client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_r, server_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.close()
            return
        # Whose turn it is on this connection: the server greets first, so a client's first
        # bytes (its login) answer the greeting and count like any other request.
        state = {"client_turn": False, "lose_answer": False, "silent": False}

        async def pump(reader, writer, from_client: bool) -> None:
            try:
                while data := await reader.read(65536):
                    if from_client and not state["client_turn"]:
                        state["client_turn"] = True
                        self.total += 1
                        # The command byte (COM_QUERY) precedes the text.
                        if self._lose_answer_to and data[5:].startswith(self._lose_answer_to):
                            self._lose_answer_to = None
                            state["lose_answer"] = True
                        if self._stop_answering_at and \
                                data[5:].startswith(self._stop_answering_at):
                            self._stop_answering_at = None
                            state["silent"] = True
                    elif not from_client and state["silent"]:
                        continue  # read and dropped: the client waits for ever
                    elif not from_client:
                        state["client_turn"] = False
                        if state["lose_answer"]:
                            client_w.close()
                            server_w.close()
                            return
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        tasks = [asyncio.create_task(pump(client_r, server_w, True)),
                 asyncio.create_task(pump(server_r, client_w, False))]
        self._pumps.update(tasks)
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._pumps.difference_update(tasks)
