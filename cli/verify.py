"""`cqrs-accounts verify`: the whole log, one customer (`--customer`), one account's customer
(`--account`), or continuously (`--watch`, operations/watch.py); `--repair` with any of them.
Like cli/operations.py, it imports what the check runs with only when it runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from cli.operations import console, err, run_operation

if TYPE_CHECKING:
    from operations.drift import Drift
    from operations.scope import Scope
    from shared.config import Settings

SHOWN = 200  # rows of the table; the count below it says how many there are


def _show(drift: list[Drift]) -> None:
    from rich.table import Table

    table = Table("view", "document", "field", "expected", "actual")
    for d in drift[:SHOWN]:
        table.add_row(d.view, d.doc_id, d.field, str(d.expected)[:60], str(d.actual)[:60])
    console.print(table)
    console.print(f"[red]{len(drift)} difference(s)[/red]")


async def _scope_of(engine, customer: str | None, account: str | None) -> Scope | None:
    """The scope the options name; None (after one line on stderr) for an id the write model
    does not hold."""
    from command_service.state_reads import customer_states, owners_of
    from operations.scope import EVERYTHING, Scope

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


def _watch(settings_or_exit: Callable[[], Settings], host: str, port: int, fix: bool) -> None:
    from cli.main import exit_unless_reachable  # at call time: cli.main registers this module
    from operations.watch_worker import serve_verify_watch
    from shared.worker import run

    settings = settings_or_exit()
    exit_unless_reachable(settings, ["database", "read_store"])
    run(serve_verify_watch(settings, host, port, repair=fix))


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
        watch: Annotated[bool, typer.Option(
            "--watch", help="keep checking what changed since the last pass, every "
                            "CQRS_VERIFY_INTERVAL_S; exports cqrs_verify_* metrics")] = False,
        host: Annotated[str, typer.Option(help="with --watch: interface to bind")] = "127.0.0.1",
        port: Annotated[int, typer.Option(
            help="with --watch: ops HTTP port (/healthz /readyz /metrics); 0 = any free "
                 "port")] = 0,
    ) -> None:
        """Compare the write model with the read models (all of them, one customer's, or
        continuously what changed); exit 1 when they differ."""
        if sum(option is not None for option in (customer, account)) + watch > 1:
            err.print("[red]--customer, --account, --watch:[/red] give one of them",
                      highlight=False)
            raise typer.Exit(2)
        if watch:
            _watch(settings_or_exit, host, port, fix)
            return

        from operations.repair import repair
        from operations.verify import find_lasting_drift
        from shared.readmodel import ViewDatabase

        async def work(engine, db) -> int:
            scope = await _scope_of(engine, customer, account)
            if scope is None:
                return 1
            what = ("every read model matches" if scope.everything
                    else f"customer {scope.customer_ids[0]}'s read models match")
            views = ViewDatabase(db)
            drift = await find_lasting_drift(engine, views, scope=scope)
            if not drift:
                console.print(f"[green]no drift[/green]: {what} the write model")
                return 0
            _show(drift)
            if not fix:
                return 1
            repaired = await repair(engine, views, {d.customer_id for d in drift if d.customer_id})
            remaining = await find_lasting_drift(engine, views, scope=scope)
            console.print(f"repaired {repaired} customer(s); {len(remaining)} difference(s) left")
            return 1 if remaining else 0

        run_operation(settings_or_exit, work)
