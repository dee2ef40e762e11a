"""`cqrs-accounts verify`: the whole log, one customer (`--customer`), one account's customer
(`--account`), or continuously (`--watch`, operations/watch.py); `--repair` with any of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from rich.table import Table

from cli.operations import console, err, run_operation
from command_service.state_reads import customer_states, owners_of
from operations.drift import Drift
from operations.repair import repair
from operations.scope import EVERYTHING, Scope
from operations.verify import find_lasting_drift
from shared.config import Settings
from shared.readmodel import ViewDatabase

SHOWN = 200  # rows of the table; the count below it says how many there are


def _show(drift: list[Drift]) -> None:
    table = Table("view", "document", "field", "expected", "actual")
    for d in drift[:SHOWN]:
        table.add_row(d.view, d.doc_id, d.field, str(d.expected)[:60], str(d.actual)[:60])
    console.print(table)
    console.print(f"[red]{len(drift)} difference(s)[/red]")


async def _scope_of(engine, customer: str | None, account: str | None) -> Scope | None:
    """The scope the options name; None (after one line on stderr) for an id the write model
    does not hold."""
    if account is not None:
        owner = (await owners_of(engine, [account])).get(account)
        if owner is None:
            err.print(f"[red]no account {account}[/red] in the write model", highlight=False)
            return None
        return Scope.of([owner])
    if customer is not None:
        if not await customer_states(engine, [customer]):
            err.print(f"[red]no customer {customer}[/red] in the write model", highlight=False)
            return None
        return Scope.of([customer])
    return EVERYTHING


def register(app: typer.Typer, settings_or_exit: Callable[[], Settings]) -> None:
    @app.command()
    def verify(
        fix: Annotated[bool, typer.Option(
            "--repair", help="re-project the customers whose views differ")] = False,
        customer: Annotated[str | None, typer.Option(
            help="check only this customer, its accounts and their documents")] = None,
        account: Annotated[str | None, typer.Option(
            help="check this account's customer with all its accounts: the customer's view "
                 "lists the account and its daily statistics sum every account, so they are "
                 "only right or wrong together (and --repair re-projects that customer)")] = None,
    ) -> None:
        """Compare the write model with the read models (all of them, or one customer's);
        exit 1 when they differ."""
        if customer is not None and account is not None:
            err.print("[red]--customer and --account:[/red] give one of them", highlight=False)
            raise typer.Exit(2)

        async def work(engine, db) -> int:
            scope = await _scope_of(engine, customer, account)
            if scope is None:
                return 1
            what = ("every read model" if scope.everything
                    else f"customer {scope.customer_ids[0]}'s read models")
            views = ViewDatabase(db)
            drift = await find_lasting_drift(engine, views, scope=scope)
            if not drift:
                console.print(f"[green]no drift[/green]: {what} match the write model")
                return 0
            _show(drift)
            if not fix:
                return 1
            repaired = await repair(engine, views, {d.customer_id for d in drift if d.customer_id})
            remaining = await find_lasting_drift(engine, views, scope=scope)
            console.print(f"repaired {repaired} customer(s); {len(remaining)} difference(s) left")
            return 1 if remaining else 0

        run_operation(settings_or_exit, work)
