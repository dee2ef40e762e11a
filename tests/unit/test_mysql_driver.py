"""The reads of the write path run straight on asyncmy (command_service/db/mysql_driver.py):
each statement of repository.py compiles for MySQL with its parameters in order, its own
constants bound, and no result conversion left undone; a driver error is classified as the
server's (connection in step) or the client's (connection lost)."""

from __future__ import annotations

import asyncmy.errors
import pytest
from sqlalchemy.dialects.mysql.asyncmy import dialect as asyncmy_dialect

from command_service.db import mysql_driver, repository

DIALECT = asyncmy_dialect()
READS = {"customer": repository._CUSTOMER_FOR_UPDATE, "email": repository._EMAIL_OWNER,
         "open accounts": repository._OPEN_ACCOUNTS, "account": repository._ACCOUNT_FOR_UPDATE,
         "owner": repository._ACCOUNT_OWNER}


@pytest.mark.parametrize("name", READS)
def test_every_read_of_the_write_path_compiles_for_the_driver(name):
    compiled = mysql_driver._compiled(READS[name], DIALECT)
    assert compiled.sql.count("%s") == len(compiled.names)
    assert "%(" not in compiled.sql  # format style, as the driver takes it


def test_a_statements_own_constants_are_bound_beside_the_callers_values():
    compiled = mysql_driver._compiled(repository._OPEN_ACCOUNTS, DIALECT)
    assert compiled.parameters({"customer_id": "c1"}) == ("c1", "closed")


def test_the_locking_reads_keep_for_update_and_name_their_columns():
    account = mysql_driver._compiled(repository._ACCOUNT_FOR_UPDATE, DIALECT)
    assert account.sql.rstrip().endswith("FOR UPDATE")
    assert {"account_id", "balance_minor", "version", "updated_at"} <= set(account.columns)


@pytest.mark.parametrize(("error", "server"), [
    (asyncmy.errors.IntegrityError(1062, "Duplicate entry"), True),
    (asyncmy.errors.OperationalError(1213, "Deadlock found"), True),
    (asyncmy.errors.OperationalError(2013, "Lost connection to MySQL server"), False),
    (asyncmy.errors.InterfaceError(0, "Not connected"), False),
    (asyncmy.errors.OperationalError("no code at all"), False),
])
def test_only_a_servers_error_leaves_the_connection_in_step(error, server):
    assert mysql_driver.is_server_error(error) is server
