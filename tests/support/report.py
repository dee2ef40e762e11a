"""A pytest plugin: one line naming the backends the suite ran on, with how many tests ran on
each, the time the tests of each backend pair took, and a failed session when a backend that
CQRS_TEST_REQUIRE_BACKENDS names ran none. Under pytest-xdist the figures travel on each test's
report to the controller, which alone prints them and judges the session."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from tests.support import published_events
from tests.support.backends import REQUIRED, backend_params

_ran: Counter[str] = Counter()
_seconds: defaultdict[str, float] = defaultdict(float)  # set-up, call and teardown, per pair
_contract_checked = 0  # messages checked against docs/events/, as the reports carried them
_counted_here = 0  # published_events.validated already put on a report by this process


def _backends(item: pytest.Item) -> list[str]:
    ran = list(backend_params(item).values())
    if "read_store" in getattr(item, "fixturenames", ()):
        ran.append("secantus")
    return ran


def _pair_label(backends: list[str]) -> str:
    """"tansu-sqlite" for a test on a broker and a write store, "tansu" for one on a broker
    alone, "no server" for the rest (the read store is with nearly every integration test)."""
    return "-".join(b for b in backends if b != "secantus") or (
        "secantus" if backends else "no server")


@pytest.hookimpl
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global _contract_checked
    backends = getattr(report, "backends", [])
    _seconds[_pair_label(backends)] += report.duration
    _contract_checked += getattr(report, "contract_checked", 0)
    if report.when == "call" and not report.skipped:
        for backend in backends:
            _ran[backend] += 1


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    global _counted_here
    outcome = yield
    report = outcome.get_result()
    report.backends = _backends(item)
    report.contract_checked = published_events.validated - _counted_here
    _counted_here = published_events.validated


def summary() -> str:
    if not _ran:
        return "backends: no test ran on a server"
    return "backends: " + ", ".join(f"{name} {count} tests" for name, count in
                                    sorted(_ran.items()))


def missing() -> list[str]:
    """The backends CQRS_TEST_REQUIRE_BACKENDS names that ran no test."""
    return sorted(REQUIRED - set(_ran))


def pair_times() -> str:
    return "time per pair: " + ", ".join(
        f"{label} {seconds / 60:.1f} min" for label, seconds in
        sorted(_seconds.items(), key=lambda entry: -entry[1]))


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if _is_worker(config):
        return
    terminalreporter.write_line(summary())
    if _seconds:
        terminalreporter.write_line(pair_times())
    if _contract_checked or _ran:
        terminalreporter.write_line(f"event contract: {_contract_checked} messages the "
                                "service published, each checked against docs/events/")
    if not_run := missing():
        terminalreporter.write_line(f"required backends ran no test: {', '.join(not_run)} "
                                    "(CQRS_TEST_REQUIRE_BACKENDS)", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _is_worker(session.config) and missing() and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
