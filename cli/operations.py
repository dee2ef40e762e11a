"""Operator commands: rebuild, status, dlq list|show|retry|discard (verify: cli/verify.py).

cli/main.py registers them at import, so this module imports only typer and rich at the top:
each command imports what it runs with (the database, broker and read-store code, even
asyncio) when it runs, and `cqrs-accounts --help` stays fast."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from shared.config import Settings

console = Console()
err = Console(stderr=True, soft_wrap=True)  # one error, one line
dlq_app = typer.Typer(help="Inspect and resolve dead-lettered events.", no_args_is_help=True)


@asynccontextmanager
async def _backends(settings: Settings, uses_write_model: bool):
    """The write model's engine (None for a command that never reads it, so that it neither
    needs nor creates one) and the read store's database."""
    from cli.dependencies import probe_database
    from command_service.db.engine import create_engine
    from shared.readmodel import make_mongo_client

    if uses_write_model:
        await probe_database(settings)  # there, and migrated
    engine = create_engine(settings) if uses_write_model else None
    client = make_mongo_client(settings)
    try:
        yield engine, client[settings.mongo_database]
    finally:
        await client.close()
        if engine is not None:
            await engine.dispose()


def run_operation(settings_or_exit: Callable[[], Settings],
                  work: Callable[..., Awaitable[int | None]],
                  uses_write_model: bool = True) -> None:
    import asyncio

    from cli.dependencies import require_a_stack
    from cli.failures import one_line_on_failure
    from shared.upcasting import UnreadableEvent

    settings = settings_or_exit()

    async def main() -> int | None:
        async with _backends(settings, uses_write_model) as (engine, db):
            try:
                return await work(engine, db)
            except UnreadableEvent as exc:  # a newer release wrote it: this one cannot fold it
                err.print(f"[red]the event log holds an event this release cannot read:[/red] "
                          f"{exc}; run this with a release that reads it", highlight=False)
                return 1

    with one_line_on_failure(settings, err):
        require_a_stack()
        code = asyncio.run(main())
    raise typer.Exit(code or 0)


def register(app: typer.Typer, settings_or_exit: Callable[[], Settings]) -> None:
    from cli.verify import register as register_verify

    register_verify(app, settings_or_exit)

    @app.command()
    def rebuild() -> None:
        """Rebuild every read model from the events table into fresh collections, then
        switch to them together (the dependent views are only consistent as one set)."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        from operations.rebuild import RebuildIncomplete
        from operations.rebuild import rebuild as rebuild_views

        async def work(engine, db) -> int:
            with Progress("[progress.description]{task.description}", BarColumn(),
                          MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
                task = bar.add_task("projecting the event log", total=None)
                try:
                    report = await rebuild_views(
                        engine, db, progress=lambda n: bar.advance(task, n),
                        on_total=lambda total: bar.update(task, total=total))
                except RebuildIncomplete as exc:
                    console.print(f"[red]rebuild stopped, nothing switched:[/red] {exc}")
                    return 1
            console.print(f"rebuilt from {report.events} events in {report.seconds:.1f}s; "
                          f"now serving: {', '.join(report.switched.values())}; "
                          "`cqrs-accounts verify` compares them with the write model")
            return 0

        run_operation(settings_or_exit, work)

    @app.command()
    def status(as_json: Annotated[bool, typer.Option(
            "--json", help="The same figures as one JSON object, for scripts.")] = False,
    ) -> None:
        """One screen: outbox backlog, active relay, lag per partition and view, dead letters."""
        from cli.dependencies import classify
        from operations.status import as_json as status_json
        from operations.status import collect_status, render

        settings = settings_or_exit()

        async def work(engine, db) -> int:
            status = await collect_status(settings, engine, db)
            down = status.broker_exception and classify(status.broker_exception, settings)
            # A script still gets every figure that could be read (with `broker_error`); a
            # person gets the one line that says what to fix, not a screen of dashes.
            if as_json:
                if down:  # what the one line says, not the client's own wording of it
                    status.broker_error = str(down)
                print(json.dumps(status_json(status), indent=2), flush=True)  # before the line
            elif not down:
                console.print(render(status))
            if down:
                raise down
            return 0

        run_operation(lambda: settings, work)

    @dlq_app.command("list")
    def dlq_list(aggregate: Annotated[str | None, typer.Option()] = None) -> None:
        """Parked events, by aggregate and version."""
        from rich.table import Table

        from projector.dead_letters import DeadLetters

        async def work(engine, db) -> int:
            entries = await DeadLetters(db).list(aggregate)
            table = Table("id", "aggregate", "version", "type", "parked at", "error")
            for e in entries:
                table.add_row(e["_id"], e["aggregate_id"] or "-", str(e["version"] or "-"),
                              e["event_type"] or "-", str(e["parked_at"])[:19], e["error"][:70])
            console.print(table)
            console.print(f"{len(entries)} parked event(s)")
            return 0

        run_operation(settings_or_exit, work, uses_write_model=False)

    @dlq_app.command("show")
    def dlq_show(entry_id: str) -> None:
        """One parked event in full."""
        from projector.dead_letters import DeadLetters

        async def work(engine, db) -> int:
            entry = await DeadLetters(db).get(entry_id)
            if entry is None:
                console.print(f"no dead letter {entry_id}")
                return 1
            console.print_json(json.dumps(entry, default=str))
            return 0

        run_operation(settings_or_exit, work, uses_write_model=False)

    @dlq_app.command("retry")
    def dlq_retry(aggregate: Annotated[str | None, typer.Option(
            help="only this aggregate (default: every parked aggregate)")] = None) -> None:
        """Apply parked events again, in order, after the cause was fixed."""
        from projector.dead_letters import DeadLetters
        from projector.store import ReadStore
        from shared.readmodel import ViewDatabase

        async def work(engine, db) -> int:
            report = await DeadLetters(db).retry(ReadStore(ViewDatabase(db)), aggregate)
            console.print(f"applied {report.applied}, already applied {report.already_applied}")
            for aggregate_id, reason in report.still_parked.items():
                console.print(f"[yellow]still parked[/yellow] {aggregate_id}: {reason}")
            return 1 if report.still_parked else 0

        run_operation(settings_or_exit, work, uses_write_model=False)

    @dlq_app.command("discard")
    def dlq_discard(entry_ids: Annotated[list[str] | None, typer.Argument()] = None,
                    aggregate: Annotated[str | None, typer.Option()] = None) -> None:
        """Give up on parked events (then run `verify --repair` for their aggregate)."""
        from projector.dead_letters import DeadLetters

        async def work(engine, db) -> int:
            try:
                count = await DeadLetters(db).discard(entry_ids, aggregate)
            except ValueError as exc:
                console.print(str(exc))
                return 2
            console.print(f"discarded {count} event(s); run `cqrs-accounts verify --repair` "
                          "to bring their views back in line with the write model")
            return 0

        run_operation(settings_or_exit, work, uses_write_model=False)

    app.add_typer(dlq_app, name="dlq")
