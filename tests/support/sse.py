"""A Server-Sent Events client for the tests: httpx streams the response, this splits it into
messages (the blank-line-separated blocks of the text/event-stream format)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Message:
    """One block: an event (`event`, `id`, `data`) or a comment (`comment`)."""

    event: str | None = None
    id: str | None = None
    data: bytes | None = None
    comment: str | None = None

    @property
    def version(self) -> int:
        return int(self.id)

    def view(self) -> dict:
        return json.loads(self.data)


def parse(block: bytes) -> Message:
    fields: dict[str, bytes] = {}
    comment = None
    for line in block.split(b"\n"):
        if line.startswith(b":"):
            comment = line[1:].decode().strip()
            continue
        name, _, value = line.partition(b":")
        fields[name.decode()] = value.removeprefix(b" ")
    if comment is not None and not fields:
        return Message(comment=comment)
    return Message(event=fields.get("event", b"").decode() or None,
                   id=fields["id"].decode() if "id" in fields else None,
                   data=fields.get("data"))


class EventReader:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._chunks = response.aiter_bytes()
        self._buffer = b""
        self.ended = False

    async def next(self, timeout_s: float = 20.0) -> Message | None:
        """The next message, or None when the server ended the stream."""
        async with asyncio.timeout(timeout_s):
            while b"\n\n" not in self._buffer:
                try:
                    self._buffer += await anext(self._chunks)
                except StopAsyncIteration:
                    self.ended = True
                    return None
        block, self._buffer = self._buffer.split(b"\n\n", 1)
        return parse(block)

    async def next_event(self, timeout_s: float = 20.0) -> Message:
        """The next view event, past any keep-alive comments."""
        async with asyncio.timeout(timeout_s):
            while True:
                message = await self.next()
                assert message is not None, "the stream ended"
                if message.comment is None:
                    return message

    async def event_reaching(self, version: int, timeout_s: float = 20.0) -> list[Message]:
        """Every event until one with an id of at least `version` (inclusive)."""
        seen: list[Message] = []
        async with asyncio.timeout(timeout_s):
            while not seen or seen[-1].version < version:
                seen.append(await self.next_event())
        return seen


@contextlib.asynccontextmanager
async def open_stream(client: httpx.AsyncClient, path: str,
                      headers: dict[str, str] | None = None) -> AsyncIterator[EventReader]:
    """GET `path` as a stream (reads may wait as long as a test needs: the waits are the
    reader's own)."""
    async with client.stream("GET", path, headers=headers,
                             timeout=httpx.Timeout(30.0, read=None)) as response:
        yield EventReader(response)
