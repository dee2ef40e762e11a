"""The command side's Prometheus metrics (the relay's live in `relay.py`)."""

from prometheus_client import Counter

COMMANDS = Counter(
    "cqrs_commands_total", "Commands handled, by type and outcome", ["type", "outcome"]
)
