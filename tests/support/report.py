"""A pytest plugin: one line naming the backends the suite ran on, with how many tests ran on
each, and a failed session when a backend that CQRS_TEST_REQUIRE_BACKENDS names ran none."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.support import published_events
from tests.support.backends import REQUIRED

# The fixtures whose parameter names a backend (sqlite/mysql, tansu/kafka).
BACKEND_PARAMS = ("database_url", "broker")
_ran: Counter[str] = Counter()


def _backends(item: pytest.Item) -> list[str]:
    params = getattr(getattr(item, "callspec", None), "params", {})
    ran = [str(params[name]) for name in BACKEND_PARAMS if name in params]
    if "read_store" in getattr(item, "fixturenames", ()):
        ran.append("secantus")
    return ran


@pytest.hookimpl
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and not report.skipped:
        for backend in getattr(report, "backends", []):
            _ran[backend] += 1


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    outcome.get_result().backends = _backends(item)


def summary() -> str:
    if not _ran:
        return "backends: no test ran on a server"
    return "backends: " + ", ".join(f"{name} {count} tests" for name, count in
                                    sorted(_ran.items()))


def missing() -> list[str]:
    """The backends CQRS_TEST_REQUIRE_BACKENDS names that ran no test."""
    return sorted(REQUIRED - set(_ran))


def pytest_terminal_summary(terminalreporter) -> None:
    terminalreporter.write_line(summary())
    if published_events.validated or _ran:
        terminalreporter.write_line(f"event contract: {published_events.validated} messages the "
                                "service published, each checked against docs/events/")
    if not_run := missing():
        terminalreporter.write_line(f"required backends ran no test: {', '.join(not_run)} "
                                    "(CQRS_TEST_REQUIRE_BACKENDS)", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if missing() and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
