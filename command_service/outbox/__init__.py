"""The outbox relay, a process of its own (`cqrs-accounts relay`): it publishes the rows the
command service committed to the outbox, in order, and marks them sent once the broker
acknowledged them.

- `relay.py`: claim, publish, settle, mark (guarantees 1 to 3 of docs/design.md);
- `rows.py`: the rows as the relay handles them, and which of a batch may be marked sent;
- `refusals.py`: which aggregates are held back after the broker refused their message;
- `lease.py`: the leader lease that keeps one relay active and the others on standby;
- `backlog.py`: what waits in the outbox, and queuing events again (`--resend-from`);
- `worker.py`: the process: producer, lease, ops HTTP port, SIGTERM.
"""
