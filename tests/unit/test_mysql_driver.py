"""The reads of the write path run straight on asyncmy (command_service/db/mysql_driver.py):
each statement of repository.py compiles for MySQL with its parameters in order, its own
constants bound, and no result conversion left undone; a driver error is classified as the
server's (connection in step) or the client's (connection lost)."""

from __future__ import annotations

import asyncmy.errors
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.mysql.asyncmy import dialect as asyncmy_dialect

from command_service.db import mysql_driver, repository
from command_service.db.compiled import compiled
from command_service.db.tables import accounts

DIALECT = asyncmy_dialect(dbapi=asyncmy_dialect.import_dbapi())
READS = {"customer": repository._CUSTOMER_FOR_UPDATE, "email": repository._EMAIL_OWNER,
         "open accounts": repository._OPEN_ACCOUNTS, "account": repository._ACCOUNT_FOR_UPDATE,
         "owner": repository._ACCOUNT_OWNER}


@pytest.mark.parametrize("name", READS)
def test_every_read_of_the_write_path_compiles_for_the_driver(name):
    read = compiled(READS[name], DIALECT)
    assert read.sql.count("%s") == len(read.names)
    assert "%(" not in read.sql  # format style, as the driver takes it


def test_a_statements_own_constants_are_bound_beside_the_callers_values():
    count = compiled(repository._OPEN_ACCOUNTS, DIALECT)
    assert count.parameters({"customer_id": "c1"}) == ("c1", "closed")


def test_the_locking_reads_keep_for_update_and_name_their_columns():
    account = compiled(repository._ACCOUNT_FOR_UPDATE, DIALECT)
    assert account.sql.rstrip().endswith("FOR UPDATE")
    assert {"account_id", "balance_minor", "version", "updated_at"} <= set(account.columns)


def test_a_column_without_a_name_of_its_own_is_refused():
    with pytest.raises(ValueError, match="label every column"):
        compiled(sa.select(sa.func.count()).select_from(accounts), DIALECT)


def test_each_dialect_compiles_its_own():
    other = asyncmy_dialect(dbapi=asyncmy_dialect.import_dbapi())
    statement = repository._ACCOUNT_OWNER
    assert compiled(statement, DIALECT) is compiled(statement, DIALECT)
    assert compiled(statement, other) is not \
        compiled(statement, DIALECT)


@pytest.mark.parametrize(("error", "server"), [
    (asyncmy.errors.IntegrityError(1062, "Duplicate entry"), True),
    (asyncmy.errors.OperationalError(1213, "Deadlock found"), True),
    (asyncmy.errors.OperationalError(1205, "Lock wait timeout exceeded"), True),
    # Server errors past the client's range: a CHECK constraint on MySQL 8 and on MariaDB.
    (asyncmy.errors.OperationalError(3819, "Check constraint is violated."), True),
    (asyncmy.errors.OperationalError(4025, "CONSTRAINT `ck` failed"), True),
    # A connection killed on the server is gone, though its code is a server's.
    (asyncmy.errors.OperationalError(1927, "Connection was killed"), False),
    (asyncmy.errors.OperationalError(2013, "Lost connection to MySQL server"), False),
    (asyncmy.errors.OperationalError(2006, "MySQL server has gone away"), False),
    (asyncmy.errors.InterfaceError(0, "Not connected"), False),
    (asyncmy.errors.OperationalError("no code at all"), False),
])
def test_only_a_servers_error_leaves_the_connection_in_step(error, server):
    assert mysql_driver.is_server_error(error, DIALECT) is server
