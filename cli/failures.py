"""Every failure of a command as one line, the traceback only when asked for.

An operator who runs `cqrs-accounts verify` and meets a broken read store needs what `psql` or
`kubectl` would say: what failed, where, and what to do next. Hundreds of lines of traceback
(with the driver's binary `$clusterTime` signature in them) say none of it, and bury the one
line that does. This module is the one place that turns an exception a command did not expect
into that line: a dependency that is down, or a write model with no schema, in the words of
cli/dependencies.py; any other error named by the dependency it came from (or the command), its
class and the first line of its message. `--debug` (or CQRS_DEBUG=1) lets the traceback through.
"""

from __future__ import annotations

import logging
import sqlite3
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

# The drivers' errors and cli/dependencies.py are imported where a failure is phrased: the
# `--debug` option imports this module for every command, `--help` included.
if TYPE_CHECKING:
    from cli.dependencies import Dependency
    from shared.config import Settings

# Where the project's packages are, installed or not, and which they are.
PROJECT = Path(__file__).resolve().parent.parent
PACKAGES = {"cli", "command_service", "query_service", "projector", "operations", "shared"}
MESSAGE_CHARS = 160
THIRD_PARTY_LOGGERS = ("aiokafka", "pymongo", "sqlalchemy", "asyncio", "alembic")
_debug = {"on": False}


def show_tracebacks(on: bool) -> None:
    """Set once, by the `--debug` option (or CQRS_DEBUG) every command takes."""
    _debug["on"] = on


def debugging() -> bool:
    return _debug["on"]


def origin(exc: BaseException, settings: Settings) -> Dependency | None:
    """The dependency whose driver raised `exc` (or an error in its chain), if any."""
    from aiokafka.errors import KafkaError
    from pymongo.errors import PyMongoError
    from sqlalchemy.exc import SQLAlchemyError

    from cli.dependencies import broker, chain, read_store, write_database

    for error in chain(exc):
        if isinstance(error, PyMongoError):
            return read_store(settings)
        if isinstance(error, SQLAlchemyError | sqlite3.Error):
            return write_database(settings)
        if isinstance(error, KafkaError):
            return broker(settings)
    return None


def step(exc: BaseException) -> str:
    """Where in the project's own code the error was raised (the innermost such frame): what
    an operator can quote in a bug report without the traceback."""
    ours = [(frame, path.relative_to(PROJECT)) for frame in traceback.extract_tb(exc.__traceback__)
            if (path := Path(frame.filename).resolve()).is_relative_to(PROJECT)
            and path.relative_to(PROJECT).parts[0] in PACKAGES]
    if not ours:
        return "`cqrs-accounts`"
    frame, path = ours[-1]
    return f"{frame.name} ({path}:{frame.lineno})"


def summary(exc: BaseException) -> str:
    """The error's class and the first line of its message, trimmed. A driver's own error is
    named rather than SQLAlchemy's wrapper of it, and pymongo's `full error` (the whole reply,
    binary signature and all) is left out: the message before it says what went wrong."""
    error = getattr(exc, "orig", None) or exc
    message = str(error).split(", full error:", 1)[0].strip()
    first = next((line.strip() for line in message.splitlines() if line.strip()), "")
    if len(first) > MESSAGE_CHARS:
        first = first[:MESSAGE_CHARS - 1] + "…"
    return f"{error.__class__.__name__}: {first}" if first else error.__class__.__name__


def one_line(exc: BaseException, settings: Settings) -> str:
    """What a command prints when `exc` ends it."""
    from cli.dependencies import classify, source

    known = classify(exc, settings)
    if known is not None:
        return str(known)
    dependency = origin(exc, settings)
    where = (f"{dependency.name} at {dependency.address} "
             f"({dependency.setting}{source(dependency.setting)})") if dependency else step(exc)
    return f"{where} failed: {summary(exc)} (--debug shows the traceback)"


@contextmanager
def quiet_third_party_loggers() -> Iterator[None]:
    """The drivers log their retries and reconnects (aiokafka at ERROR, dozens of lines while a
    broker is away); the command's own line says everything they would."""
    loggers = [logging.getLogger(name) for name in THIRD_PARTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    if not debugging():
        for logger in loggers:
            logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:  # a process that goes on to run keeps its drivers' warnings
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextmanager
def one_line_on_failure(settings: Settings, console) -> Iterator[None]:
    """Around a command's work: whatever ends it, other than its own exit status, is printed
    as one line on `console` with exit status 1; with `--debug`, the traceback goes up as it
    is."""
    with quiet_third_party_loggers():
        try:
            yield
        except typer.Exit:  # the command's own exit status (typer.Exit is a RuntimeError)
            raise
        except Exception as exc:
            if debugging():
                raise
            console.print(one_line(exc, settings), markup=False, highlight=False)
            raise typer.Exit(1) from None
