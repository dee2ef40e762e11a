"""`cqrs-accounts`: one console script for every process and operation."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from shared.config import Settings, SettingsError, load_settings
from shared.logs import configure_logging

app = typer.Typer(help="CQRS bank accounts: command and query services, outbox relay, projector.",
                  no_args_is_help=True, add_completion=False)
err = Console(stderr=True, soft_wrap=True)  # one error, one line

Host = Annotated[str, typer.Option(help="interface to bind")]
OPS_PORT_HELP = "ops HTTP port (/healthz /readyz /metrics); 0 = any free port"


def settings_or_exit() -> Settings:
    """A bad or missing setting stops the process with one line naming it."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        err.print(f"[red]configuration error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level)
    return settings


@app.command()
def migrate() -> None:
    """Bring the write model's schema to the latest version (alembic upgrade head)."""
    from command_service.db.migrate import upgrade_to_head

    settings = settings_or_exit()
    upgrade_to_head(settings.database_url)
    err.print("write model migrated to head")


@app.command("command-api")
def command_api(host: Host = "127.0.0.1", port: Annotated[int, typer.Option()] = 8000) -> None:
    """Serve the command service (HTTP)."""
    from command_service.api.app import create_app

    settings = settings_or_exit()
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning",
                timeout_graceful_shutdown=10)


@app.command("query-api")
def query_api(host: Host = "127.0.0.1", port: Annotated[int, typer.Option()] = 8001) -> None:
    """Serve the query service (HTTP)."""
    from query_service.app import create_app

    settings = settings_or_exit()
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning",
                timeout_graceful_shutdown=10)


@app.command()
def relay(
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help=OPS_PORT_HELP)] = 0,
    resend_from: Annotated[int | None, typer.Option(
        help="first re-publish every event from this global position on (for a broker that "
             "lost data); the read side's version guards skip what it already has")] = None,
) -> None:
    """Publish the outbox to Kafka (one active relay; others stand by)."""
    from command_service.relay_worker import serve_relay

    settings = settings_or_exit()
    asyncio.run(serve_relay(settings, host, port, resend_from=resend_from))


@app.command()
def projector(
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help=OPS_PORT_HELP)] = 0,
) -> None:
    """Consume events and keep the MongoDB read models up to date."""
    from projector.worker import serve_projector

    settings = settings_or_exit()
    asyncio.run(serve_projector(settings, host, port))


@app.command()
def dev(
    command_port: Annotated[int, typer.Option(help="command service port")] = 8000,
    query_port: Annotated[int, typer.Option(help="query service port")] = 8001,
    data_dir: Annotated[str, typer.Option(help="where the write DB and read store live")] = ".data",
) -> None:
    """Run the whole embedded stack in the foreground (SQLite, Tansu, SecantusDB, 4 processes)."""
    from cli.devstack import DevStack, PortTaken

    try:
        code = asyncio.run(DevStack(data_dir, command_port, query_port).run())
    except PortTaken as exc:
        err.print(f"[red]cannot start:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


if __name__ == "__main__":
    app()
