"""`cqrs-accounts`: one console script for every process and operation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cli.settings import api_settings_or_exit, err, settings_or_exit

# Every command imports what it runs with (even asyncio) inside its function: `--help` and a
# command's own help then load what typer and rich need, not FastAPI, SQLAlchemy, the settings
# or the drivers (tests/unit/test_cli_imports.py keeps it so).
if TYPE_CHECKING:
    from shared.config import Settings

# Rich's pretty tracebacks (with every frame's locals) are off: a failure is one line
# (cli/failures.py), and `--debug` shows Python's own traceback.
app = typer.Typer(help="CQRS bank accounts: command and query services, outbox relay, projector.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

Host = Annotated[str, typer.Option(help="interface to bind")]
OPS_PORT_HELP = "ops HTTP port (/healthz /readyz /metrics); 0 = any free port"


@app.callback()
def options(debug: Annotated[bool, typer.Option(
        "--debug", envvar="CQRS_DEBUG",
        help="on a failure, print the whole traceback, not one line")] = False) -> None:
    from cli.failures import show_tracebacks

    show_tracebacks(debug)




def exit_unless_reachable(settings: Settings, needed: list[str]) -> None:
    """A process does not start while a dependency it needs is down: it waits for it (up to
    CQRS_STARTUP_WAIT_S, since dependencies may start after it), then stops with one line."""
    import asyncio

    from cli.dependencies import wait_until_reachable
    from cli.failures import one_line_on_failure

    with one_line_on_failure(settings, err):
        asyncio.run(wait_until_reachable(settings, needed, settings.startup_wait_s))


@app.command()
def migrate() -> None:
    """Bring the write model's schema to the latest version (alembic upgrade head)."""
    from cli.failures import one_line_on_failure
    from command_service.db.migrate import upgrade_to_head

    settings = settings_or_exit()
    with one_line_on_failure(settings, err):
        upgrade_to_head(settings.database_url)
    err.print("write model migrated to head")


# Per worker: a subject's rate-limit buckets and event-stream cap (shared/ratelimit.py).
Workers = Annotated[int | None, typer.Option(
    min=1, max=64, show_default=False,
    help="worker processes serving the one port, e.g. one per core (default: CQRS_WORKERS, "
         "else 1). Limits per sender (rate limits, open event streams) hold per worker: a "
         "sender may get up to N times them. /metrics answers for all the workers")]


@app.command("command-api")
def command_api(host: Host = "127.0.0.1", port: Annotated[int, typer.Option()] = 8000,
                workers: Workers = None) -> None:
    """Serve the command service (HTTP)."""
    settings = api_settings_or_exit()
    exit_unless_reachable(settings, ["database"])
    _serve("command_service.api.app:create_app", settings, host, port, workers)


@app.command("query-api")
def query_api(host: Host = "127.0.0.1", port: Annotated[int, typer.Option()] = 8001,
              workers: Workers = None) -> None:
    """Serve the query service (HTTP)."""
    settings = api_settings_or_exit()
    exit_unless_reachable(settings, ["read_store"])
    _serve("query_service.app:create_app", settings, host, port, workers)


def _serve(factory: str, settings: Settings, host: str, port: int,
           workers: int | None) -> None:
    """One process serving the app (the default), or `workers` processes sharing the port
    under this one (shared/supervisor.py)."""

    from cli.api_worker import load_factory
    from shared.supervisor import serve_workers
    from shared.worker import run, serve_app

    count = workers or settings.workers
    api = load_factory(factory)(settings) if count == 1 else None
    try:
        if api is not None:
            run(serve_app(api, host, port))
            return
        code = serve_workers(factory, host, port,
                             count)
    except (OSError, SystemExit, RuntimeError) as exc:  # could not bind, or start failed
        err.print(f"[red]cannot serve on {host}:{port}:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    if code:
        err.print(f"[red]cannot serve on {host}:{port}:[/red] a worker could not start its "
                  "app (see the log above)", highlight=False)
        raise typer.Exit(code)


@app.command()
def relay(
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help=OPS_PORT_HELP)] = 0,
    resend_from: Annotated[int | None, typer.Option(
        help="first re-publish every event from this global position on (for a broker that "
             "lost data); the read side's version guards skip what it already has")] = None,
) -> None:
    """Publish the outbox to Kafka (one active relay; others stand by)."""
    from command_service.outbox.worker import serve_relay
    from shared.worker import run

    settings = settings_or_exit()
    exit_unless_reachable(settings, ["database", "broker"])
    run(serve_relay(settings, host, port, resend_from=resend_from))


@app.command()
def projector(
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help=OPS_PORT_HELP)] = 0,
) -> None:
    """Consume events and keep the MongoDB read models up to date."""
    from projector.worker import serve_projector
    from shared.worker import run

    settings = settings_or_exit()
    exit_unless_reachable(settings, ["broker", "read_store"])
    run(serve_projector(settings, host, port))


@app.command()
def dev(
    command_port: Annotated[int, typer.Option(help="command service port")] = 8000,
    query_port: Annotated[int, typer.Option(help="query service port")] = 8001,
    data_dir: Annotated[str, typer.Option(help="where the write DB and read store live")] = ".data",
    broker: Annotated[str, typer.Option(
        help="tansu (embedded, needs only Python) or kafka (real Apache Kafka, fetched from "
             "Maven Central; needs Java 17+)")] = "tansu",
) -> None:
    """Run the whole stack in the foreground (SQLite, a broker, SecantusDB, 4 processes)."""
    import asyncio

    from cli.devstack import BROKERS, BrokerUnavailable, DevStack, PortTaken

    if broker not in BROKERS:
        err.print(f"[red]--broker:[/red] {broker!r}; use {' or '.join(BROKERS)}",
                  highlight=False)
        raise typer.Exit(2)
    try:
        code = asyncio.run(DevStack(data_dir, command_port, query_port, broker).run())
    except (PortTaken, BrokerUnavailable) as exc:
        err.print(f"[red]cannot start:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


@app.command()
def token(
    scope: Annotated[list[str] | None, typer.Option(
        help="accounts:read, accounts:write or admin; repeat it or separate with spaces "
             "[default: accounts:read accounts:write]")] = None,
    customer: Annotated[str | None, typer.Option(
        help="a customer id: the token acts for that customer only")] = None,
    subject: Annotated[str | None, typer.Option(
        help="the sub claim [default: customer:<id> with --customer, else operator]")] = None,
    ttl: Annotated[int, typer.Option(min=60, max=366 * 86_400,
                                     help="seconds until it expires")] = 3600,
    private_key: Annotated[str | None, typer.Option(
        help="PEM private key to sign with (RS256/ES256) instead of CQRS_AUTH_JWT_SECRET")] = None,
    kid: Annotated[str | None, typer.Option(help="key id for the token's header")] = None,
    data_dir: Annotated[str, typer.Option(
        help="with no key configured, sign with the secret `dev` keeps here")] = ".data",
) -> None:
    """Print a bearer token the services accept, signed with the configured key."""
    import uuid
    from pathlib import Path

    from pydantic import SecretStr

    from cli.dev_secret import DEV_SECRET_FILE
    from shared.auth import SCOPES, mint_token
    from shared.config import SettingsError

    settings = settings_or_exit()
    scopes = [s for value in (scope or ["accounts:read accounts:write"])
              for s in value.replace(",", " ").split()]
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        err.print(f"[red]--scope:[/red] {', '.join(unknown) or 'none given'}; use "
                  f"{', '.join(SCOPES)}", highlight=False)
        raise typer.Exit(2)
    if customer is not None:
        try:
            customer = str(uuid.UUID(customer))
        except ValueError:
            err.print("[red]--customer:[/red] not a customer id (a UUID)", highlight=False)
            raise typer.Exit(2) from None
    dev_secret = Path(data_dir) / DEV_SECRET_FILE
    if private_key is None and not settings.auth_jwt_secret.get_secret_value() \
            and dev_secret.exists():
        settings = settings.model_copy(update={
            "auth_jwt_secret": SecretStr(dev_secret.read_text().strip())})
    try:
        key = Path(private_key).read_bytes() if private_key else None
        minted = mint_token(settings, subject=subject or (
            f"customer:{customer}" if customer else "operator"), scopes=scopes,
            customer_id=customer, ttl_s=ttl, private_key=key, kid=kid)
    except SettingsError as exc:
        err.print(f"[red]configuration error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except (OSError, ValueError, TypeError) as exc:
        err.print(f"[red]--private-key:[/red] cannot sign with it ({exc.__class__.__name__})",
                  highlight=False)
        raise typer.Exit(2) from None
    typer.echo(minted)


@app.command()
def schema(
    check: Annotated[bool, typer.Option(
        "--check", help="change nothing; exit 1 when the files differ from the code")] = False,
    directory: Annotated[str, typer.Option(help="where the contract lives")] = "docs/events",
) -> None:
    """Generate the published event contract (a JSON Schema per event type and version, and
    the AsyncAPI document of the topic) from the code."""
    from pathlib import Path

    from command_service.event_contract import differences, write

    target = Path(directory)
    if check and not target.is_dir():  # not a contract with every file missing: no contract
        err.print(f"[red]no event contract at {target}:[/red] run this in the project folder, "
                  "or give --directory", highlight=False)
        raise typer.Exit(1)
    problems = differences(target) if check else write(target)
    for problem in problems:
        typer.echo(f"{target}/{problem}")
    if check and problems:
        err.print(f"[red]the event contract in {target} is out of date:[/red] run "
                  "`cqrs-accounts schema`", highlight=False)
        raise typer.Exit(1)
    if not check:
        typer.echo(f"{len(problems)} file(s) of {target} brought up to date" if problems
                   else f"{target} is up to date")


def _register_operations() -> None:
    from cli.operations import register

    register(app, settings_or_exit)


_register_operations()

if __name__ == "__main__":
    app()
