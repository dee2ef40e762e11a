"""What `make dev` prints once its stack serves: the URLs, how to authenticate, a first request,
and how to run an operator command against the stack from another terminal."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cli import dev_settings

if TYPE_CHECKING:
    from cli.devstack import DevStack

DEV_TOKEN_TTL_S = 30 * 86_400  # the banner's admin token


def welcome(stack: DevStack) -> str:
    c, q = f"http://127.0.0.1:{stack.command_port}", f"http://127.0.0.1:{stack.query_port}"
    header = ' -H "Authorization: Bearer $TOKEN"'
    if stack.auth_disabled:
        auth, header = "Authentication is off (CQRS_AUTH_DISABLED=true).\n\n", ""
    elif stack.admin_token:
        auth = (f"Every /v1 request needs a bearer token. An admin token, valid for "
                f"{DEV_TOKEN_TTL_S // 86_400} days (more: cqrs-accounts token --help):\n"
                f"  export TOKEN={stack.admin_token}\n\n")
    else:
        auth = ("Every /v1 request needs a bearer token signed with your key "
                "(cqrs-accounts token --private-key …).\n\n")
    return f"""
[bold green]cqrs-accounts is running[/bold green] (data in {stack.data})
  command service  {c}   (docs: {c}/docs)
  query service    {q}   (docs: {q}/docs)
  live console     {q}/console   (paste the token and a customer id)
  relay metrics    http://127.0.0.1:{stack.relay_port}/metrics
  projector        http://127.0.0.1:{stack.projector_port}/metrics
  broker           {_broker_line(stack)}

{auth}Try it:
  curl -s -X POST {c}/v1/customers{header} -H 'content-type: application/json' \\
       -d '{{"name": "Ada Lovelace", "email": "ada@example.com"}}'
  curl -s{header} {q}/v1/customers/<customer_id>

{_operator_hint(stack)}

Ctrl-C stops everything."""


def _operator_hint(stack: DevStack) -> str:
    settings_file = dev_settings.path(stack.data)
    if settings_file.resolve() == dev_settings.path().resolve():
        how = f"Operator commands find this stack from this folder ({settings_file}):"
    else:
        how = f"Operator commands find this stack after: set -a; . {settings_file}; set +a"
    return f"{how}\n  {_script()} status      (also: verify, rebuild, dlq list, token)"


def _script() -> str:
    script = Path(sys.executable).with_name("cqrs-accounts")
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def _broker_line(stack: DevStack) -> str:
    broker = stack.servers["broker"]
    if stack.broker_kind == "kafka":
        return (f"Apache Kafka at {broker.bootstrap_servers} (its log: {broker.data_dir}; "
                "kept across restarts)")
    return (f"Tansu (embedded, in memory) at {broker.bootstrap_servers}; "
            "real Kafka: --broker kafka")
