"""py-spy, attached from outside to one process of the system while it is under load, and a
summary of where its CPU time went: by package, by project function (inclusive), and the
hottest frames (self time). py-spy samples without stopping the process (--nonblocking), so
the profiled process runs nearly at full speed; the profiled runs are never the measured ones.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

PROJECT_PACKAGES = ("command_service", "projector", "query_service", "shared")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]*)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Recording:
    """`async with Recording(pid, seconds, path) as rec: <load>`; then `rec.summary`."""

    def __init__(self, pid: int | None, seconds: float, path: Path, label: str) -> None:
        self.pid, self.seconds, self.path, self.label = pid, seconds, path, label
        self.summary: dict = {}
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Recording:
        binary = py_spy()
        if binary is None:
            self.summary = {"error": "py-spy is not installed (pip install -e '.[bench]')"}
            return self
        if self.pid is None:
            self.summary = {"error": "no process to attach to"}
            return self
        self._process = await asyncio.create_subprocess_exec(
            binary, "record", "--pid", str(self.pid), "--duration",
            str(max(1, round(self.seconds))), "--rate", "100", "--nonblocking",
            "--format", "raw", "--output", str(self.path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self._process is None:
            return
        try:
            output, _ = await asyncio.wait_for(self._process.communicate(),
                                               self.seconds + 30)
        except TimeoutError:
            self._process.kill()
            self.summary = {"error": "py-spy did not finish"}
            return
        if self._process.returncode != 0 or not self.path.exists():
            tail = output.decode(errors="replace").strip().splitlines()[-3:]
            self.summary = {"error": f"py-spy failed: {' / '.join(tail)}"}
            return
        self.summary = summarize(self.path)
        self.summary["process"] = self.label


def _parse(frame: str) -> tuple[str, str]:
    """(function, file) of one py-spy frame `function (file:line)`."""
    match = _FRAME.match(frame)
    if not match:
        return frame, ""
    return match["func"], match["file"] or ""


def _package(path: str) -> str:
    path = path.replace("\\", "/")
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    if path.startswith("<"):
        return "<python internals>"
    head = path.split("/", 1)[0]
    return head.removesuffix(".py") or "?"


def summarize(raw_path: Path, top: int = 15) -> dict:
    """From py-spy's collapsed stacks: share of CPU samples per package (any frame of it on
    the stack), per project function (inclusive), and per frame (self time)."""
    total = 0
    by_package: Counter[str] = Counter()
    project_inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    for line in raw_path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_parse(f) for f in stack.split(";") if f]
        # the first frame of a stack is the thread name in py-spy's raw format
        frames = [(func, path) for func, path in frames if path]
        if not frames:
            continue
        packages = {_package(path) for _, path in frames}
        for package in packages:
            by_package[package] += n
        seen = set()
        for func, path in frames:
            if _package(path) in PROJECT_PACKAGES:
                key = f"{func} ({path})"
                if key not in seen:
                    seen.add(key)
                    project_inclusive[key] += n
        func, path = frames[-1]
        self_time[f"{func} ({path})"] += n

    def shares(counter: Counter[str]) -> list[list]:
        return [[round(100 * n / total, 1), name] for name, n in counter.most_common(top)]

    if not total:
        return {"samples": 0}
    return {"samples": total, "packages_pct": shares(by_package),
            "project_functions_inclusive_pct": shares(project_inclusive),
            "hottest_frames_self_pct": shares(self_time)}
