"""A SQLAlchemy statement compiled once, for the driver-level paths of the write model: SQLite's
writes (sqlite_writes.py) and MySQL's reads (mysql_driver.py) run it on the driver's own
connection, skipping SQLAlchemy's per-call execution.

Compiled for the connection's dialect (and, for an INSERT or UPDATE, the columns it is given):
its text, the order of its parameters, their bind processors (so every value is sent exactly as
SQLAlchemy would send it: a DateTime in SQLite's text form), the statement's own constants
(`status != 'closed'`) and, for a SELECT, the keys of its columns. What SQLAlchemy's execution
would add that this cannot (a Python-side column default, a result conversion) is refused at
compile time, so such a statement stays on SQLAlchemy's path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement


@dataclass(frozen=True)
class Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters in the statement's (positional) order
    processors: tuple[Callable[[Any], Any] | None, ...]
    constants: dict[str, Any]  # values the statement binds itself
    columns: tuple[str, ...]  # a SELECT's column keys, in order (none for a write)

    def parameters(self, values: dict) -> tuple:
        if self.constants:
            values = {**self.constants, **values}
        return tuple(values[name] if process is None else process(values[name])
                     for name, process in zip(self.names, self.processors, strict=True))


# (statement, dialect, column keys) -> compiled; the statements are module-level ones
# (repository.py, unit_of_work.py) and each engine has one dialect: a handful of entries.
_CACHE: dict[tuple[ClauseElement, Dialect, tuple[str, ...]], Compiled] = {}


def compiled(statement: ClauseElement, dialect: Dialect, keys: tuple[str, ...] = ()) -> Compiled:
    """`statement` compiled for `dialect`; `keys`: the columns an INSERT/UPDATE is given."""
    found = _CACHE.get((statement, dialect, keys))
    if found is None:
        found = _CACHE[(statement, dialect, keys)] = _compile(statement, dialect, keys)
    return found


def _compile(statement: ClauseElement, dialect: Dialect, keys: tuple[str, ...]) -> Compiled:
    result = statement.compile(dialect=dialect, column_keys=list(keys) if keys else None)
    if result.insert_prefetch or result.update_prefetch:
        raise ValueError(f"{statement} has Python-side defaults: run it through SQLAlchemy")
    names = tuple(result.positiontup or ())
    processors = tuple(result.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                       for name in names)
    constants = {name: bind.value for name, bind in result.binds.items() if not bind.required}
    selected = tuple(getattr(statement, "selected_columns", ()))
    if any(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in selected):
        raise ValueError(f"{statement} converts what it reads: run it through SQLAlchemy")
    columns = tuple(c.key for c in selected)
    if None in columns or len(set(columns)) != len(columns):
        raise ValueError(f"{statement}: label every column it selects, each differently")
    return Compiled(result.string, names, processors, constants, columns)
