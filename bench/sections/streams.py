"""7. Live updates: Server-Sent Events from one query-service process with 1, 100 and 1,000
streams open on account views (the four processes of the system, each its own process).

- Push latency: from a deposit's response (its commit) to the moment each stream watching
  that account receives the event carrying its version; every stream's arrival is a sample.
- Memory per open stream: the query process's resident memory with the streams open, less
  before they were opened, divided by their number.
- Idle cost: the query process's CPU per second while the streams are open and nothing
  changes (its watcher's polls and the keep-alives are all that runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

from bench.context import Context, open_accounts
from bench.procs import Service
from bench.stats import CpuMeter, latency_summary

DEPOSIT_SPACING_S = 0.1
CAUGHT_UP_S = 20.0


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Stream:
    """One SSE client on a raw connection (an HTTP client per stream would measure itself):
    reads the chunked body, and reports each `view` event's id as it arrives."""

    def __init__(self, port: int, account: str, on_event) -> None:
        self.port, self.account, self._on_event = port, account, on_event
        self.first = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            await self._follow()
        except Exception as exc:  # a stream that fails before its first event fails the level
            if not self.first.done():
                self.first.set_exception(exc)
            raise

    async def _follow(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(f"GET /v1/accounts/{self.account}/stream HTTP/1.1\r\n"
                         f"Host: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                raise RuntimeError(f"stream refused: {head[:200]!r}")
            buffer = b""
            while True:  # chunked transfer encoding: size line, data, CRLF
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    return
                buffer += (await reader.readexactly(size + 2))[:-2]
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    self._parse(block.decode())
        finally:
            writer.close()

    def _parse(self, block: str) -> None:
        fields = dict(line.split(": ", 1) for line in block.split("\n")
                      if ": " in line and not line.startswith(":"))
        if fields.get("event") == "view" and "id" in fields:
            arrived = time.perf_counter()
            if not self.first.done():
                self.first.set_result(int(fields["id"]))
            self._on_event(self, int(fields["id"]), arrived)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


class Pushes:
    """Which versions were committed when, and each stream's arrival of each of them."""

    def __init__(self) -> None:
        self.committed: dict[str, dict[int, float]] = {}
        self.seen: dict[Stream, int] = {}
        self.latencies: list[float] = []
        self.changed = asyncio.Event()

    def on_event(self, stream: Stream, version: int, arrived: float) -> None:
        before = self.seen.get(stream, version)
        self.seen[stream] = version
        for v, at in self.committed.get(stream.account, {}).items():
            if before < v <= version:  # folded versions each arrive with this event
                self.latencies.append(arrived - at)
        self.changed.set()


async def _level(ctx: Context, api: Service, commands: Service, accounts: list[str],
                 streams_n: int, deposits: int, idle_s: float) -> dict:
    pushes = Pushes()
    rss_before = rss_bytes(api.pid)
    watched = accounts[:min(len(accounts), streams_n)]
    streams = [Stream(api.port, watched[i % len(watched)], pushes.on_event)
               for i in range(streams_n)]
    try:
        await asyncio.wait_for(asyncio.gather(*(s.first for s in streams)), 60)
        await asyncio.sleep(0.5)  # let the opening settle before measuring the idle cost
        meter = CpuMeter({"query-api": api.pid}).start()
        await asyncio.sleep(idle_s)
        idle_cpu = meter.stop().get("query-api")
        rss_open = rss_bytes(api.pid)

        expected = 0
        for i in range(deposits):
            account = watched[i % len(watched)]
            status, _, body = await commands.http.post(f"/v1/accounts/{account}/deposits",
                                                       {"amount": "1.00"})
            if status != 201:
                raise RuntimeError(f"deposit answered {status}: {body[:200]!r}")
            pushes.committed.setdefault(account, {})[_version(body)] = time.perf_counter()
            expected += sum(1 for s in streams if s.account == account)
            await asyncio.sleep(DEPOSIT_SPACING_S)
        # Every stream's arrival of every deposit, or what came within CAUGHT_UP_S (the
        # result says how many were expected and received).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CAUGHT_UP_S):
                while len(pushes.latencies) < expected:
                    pushes.changed.clear()  # no await since the count was read: no lost wake
                    await pushes.changed.wait()
    finally:
        await asyncio.gather(*(s.close() for s in streams))
    return {"streams": streams_n, "views_watched": len(watched), "deposits": deposits,
            "push_latency": latency_summary(pushes.latencies),
            "pushes_received": len(pushes.latencies), "pushes_expected": expected,
            "memory_per_stream_kib": round((rss_open - rss_before) / streams_n / 1024, 1),
            "idle_cpu_cores": idle_cpu}


def _version(body: bytes) -> int:
    return int(json.loads(body)["version"])


async def run(ctx: Context) -> dict:
    small = ctx.sizes.name == "smoke"
    levels, deposits, idle_s = ((1, 10, 50), 5, 1.0) if small else ((1, 100, 1_000), 40, 5.0)
    database = await ctx.backends.new_write_database("streams")
    settings = ctx.backends.settings(database, "streams")
    accounts = [a for _, a in await open_accounts(settings, 20 if small else 100)]
    services = {role: Service(role, settings, ctx.log_dir)
                for role in ("command-api", "query-api", "relay", "projector")}
    result: dict = {"what": __doc__.split("\n\n")[0].replace("\n", " "),
                    "poll_ms": settings.stream_poll_ms, "levels": []}
    try:
        for service in services.values():
            await service.start()
        api = services["query-api"]
        for account in accounts:  # a stream on a view not projected yet would be a 404
            while (await api.http.get(f"/v1/accounts/{account}"))[0] != 200:
                await asyncio.sleep(0.05)
        for n in levels:
            ctx.say(f"streams: {n} open stream(s), {deposits} deposits")
            level = await _level(ctx, api, services["command-api"], accounts, n, deposits,
                                 idle_s)
            ctx.say(f"streams:   push p50 {level['push_latency'].get('p50_ms')} ms, p99 "
                    f"{level['push_latency'].get('p99_ms')} ms; "
                    f"{level['memory_per_stream_kib']} KiB and idle "
                    f"{level['idle_cpu_cores']} cores")
            result["levels"].append(level)
    finally:
        for service in services.values():
            await service.stop()
    return result
