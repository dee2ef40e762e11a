"""One process of the system, for a bench run: `python -m bench.service ROLE --port N`, with
its settings in the CQRS_* environment like any deployment.

The APIs are served by `shared.worker.InLoopServer` (uvicorn in the process's own loop) and
the workers by their own `serve_relay` / `serve_projector`, so the bench measures the code
that ships. Each role is its own process so that the load generator never shares a core's
time slice with what it measures, and so that py-spy can sample one role at a time.
"""

from __future__ import annotations

import argparse
import sys

from shared.config import load_settings
from shared.observability import configure_logging
from shared.worker import run, serve_app, stop_on_signals

ROLES = ("command-api", "query-api", "relay", "projector")
FACTORIES = {"command-api": "command_service.api.app:create_app",
             "query-api": "query_service.app:create_app"}


async def serve(role: str, port: int) -> None:
    settings = load_settings()
    configure_logging(settings.log_level)
    if role == "relay":
        from command_service.outbox.worker import serve_relay

        await serve_relay(settings, "127.0.0.1", port, stop_on_signals())
        return
    if role == "projector":
        from projector.worker import serve_projector

        await serve_projector(settings, "127.0.0.1", port, stop_on_signals())
        return
    if role == "command-api":
        from command_service.api.app import create_app
    else:
        from query_service.app import create_app
    await serve_app(create_app(settings), "127.0.0.1", port)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.service")
    parser.add_argument("role", choices=ROLES)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1,
                        help="an API's worker processes on the one port, as `command-api "
                             "--workers N` serves them (shared/supervisor.py)")
    args = parser.parse_args()
    if args.workers > 1 and args.role in FACTORIES:
        from shared.supervisor import serve_workers

        sys.exit(serve_workers(FACTORIES[args.role],
                               "127.0.0.1", args.port, args.workers))
    run(serve(args.role, args.port))  # as the shipped processes run (cli/main.py)


if __name__ == "__main__":
    main()
