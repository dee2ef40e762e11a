"""The operator tools, behind `cqrs-accounts` (wired in cli/operations.py):

- `status.py`: one screen of the pipeline: outbox backlog, active relay, lag, views, parked;
- `verify.py`: compare the write model with every read model, and repair what drifted;
- `rebuild.py`: project the whole event log into fresh collections and switch to them;
- dead letters: the projector parks them (projector/dead_letters.py, which also lists,
  retries and discards them for `cqrs-accounts dlq`).

Each reads the write model only through the command side's read API (command_service/
event_log.py, state_reads.py, outbox/) and projects through the projector's one projection
path, the same as live projection."""
