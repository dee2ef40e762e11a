"""The settings of a process started from the console script, or one line and exit 2: apart
from cli/main.py, so that an API worker (cli/api_worker.py) reads its settings without
importing every operator command the CLI registers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from shared.config import Settings

err = Console(stderr=True, soft_wrap=True)  # one error, one line


def settings_or_exit() -> Settings:
    """A bad or missing setting stops the process with one line naming it. Started from the
    folder of a running `make dev`, a command finds that stack (cli/dev_settings.py); what the
    environment sets still wins."""
    # Here, not at the top: pydantic-settings and the logging set-up are a fifth of a second
    # that `cqrs-accounts --help` (which imports this module) does not need.
    from cli import dev_settings
    from shared.config import SettingsError, load_settings
    from shared.observability import configure_logging

    try:
        settings = load_settings(env_file=dev_settings.present())
    except SettingsError as exc:
        err.print(f"[red]configuration error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    return settings


def api_settings_or_exit() -> Settings:
    """An HTTP service also refuses to start with authentication on and no usable key."""
    from shared.auth.keys import check_auth_settings
    from shared.config import SettingsError

    settings = settings_or_exit()
    try:
        check_auth_settings(settings)
    except SettingsError as exc:
        err.print(f"[red]configuration error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    return settings
