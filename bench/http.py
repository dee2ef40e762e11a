"""A minimal HTTP/1.1 keep-alive client for load generation.

httpx spends about a millisecond of CPU per request; on a 2-core machine that would be the
load generator competing with the service it measures. This client writes the request bytes
and reads a Content-Length (or chunked) response, nothing more.
"""

from __future__ import annotations

import asyncio
import json
import time


class HttpError(Exception):
    pass


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.used_at = time.monotonic()

    def close(self) -> None:
        self.writer.close()


class HttpClient:
    """A pool of keep-alive connections to one server. `request` returns (status, headers,
    body); header names are lower-case."""

    IDLE_S = 3.0  # reconnect rather than reuse a connection the server may have dropped

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._idle: list[_Connection] = []
        self._host_header = f"{host}:{port}".encode()

    async def _connection(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if time.monotonic() - conn.used_at < self.IDLE_S and not conn.reader.at_eof():
                return conn
            conn.close()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return _Connection(reader, writer)

    async def request(self, method: str, path: str, body: object | None = None,
                      headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [b"%s %s HTTP/1.1" % (method.encode(), path.encode()),
                 b"host: " + self._host_header, b"content-length: %d" % len(payload)]
        if body is not None:
            lines.append(b"content-type: application/json")
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}".encode())
        message = b"\r\n".join(lines) + b"\r\n\r\n" + payload
        conn = await self._connection()
        try:
            conn.writer.write(message)
            status, response_headers, response_body = await self._read(conn.reader)
        except BaseException:
            conn.close()
            raise
        conn.used_at = time.monotonic()
        if response_headers.get("connection", "").lower() == "close":
            conn.close()
        else:
            self._idle.append(conn)
        return status, response_headers, response_body

    async def get(self, path: str, headers: dict[str, str] | None = None):
        return await self.request("GET", path, None, headers)

    async def post(self, path: str, body: object, headers: dict[str, str] | None = None):
        return await self.request("POST", path, body, headers)

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[int, dict, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status in (204, 304) or status < 200:  # never a body, whatever the headers say
            body = b""
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(chunk[:-2])
            body = b"".join(chunks)
        else:
            raise HttpError(f"response without a length: {status_line}")
        return status, headers, body

    async def aclose(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
